"""How models are run for evaluation, decided once per run: :class:`EvalSettings` and an
:class:`EvaluatorFactory` that builds every evaluator of the run from them.

Why: an evaluator (e.g. MoE-RBench's ``ModelEvaluator``) takes the same run-wide arguments wherever one
is built (batch sizes, cache chunking, progress, the ``on_call`` hook) plus a few that differ per model
(name, model, tokenizer, info, cache folder). Listing all of them at every call site let the copies
drift (a sweep silently dropped ``progress``). The factory holds the run-wide part; a call site names
only what differs. It is generic over the evaluator class, so this low layer never imports the bench.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from adamoe.utils.config import Config, option

__all__ = ["EvalSettings", "EvaluatorFactory"]

E = TypeVar("E")


@dataclass(frozen=True, kw_only=True)
class EvalSettings(Config):
    """Run-wide evaluation settings (validated on construction; ``from_mapping`` for YAML)."""

    section = "eval"
    batch_size: int = option(8, ge=1)  # choice rows per scoring forward (lm-eval's unit)
    gen_batch_size: int = option(8, ge=1)  # prompts per generation batch
    chunk_size: int = option(16, ge=1)  # items scored between two cache appends
    progress: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def replace(self, **changes: Any) -> EvalSettings:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class EvaluatorFactory(Generic[E]):
    """Builds evaluators of class ``cls`` that share ``settings`` and the ``on_call`` hook.

    ``cls`` is called with keyword arguments ``name, model, tokenizer, info, cache_dir, on_call`` and
    every field of ``settings``:

    >>> make = EvaluatorFactory(cls=ModelEvaluator, settings=EvalSettings(batch_size=4), on_call=hook)
    >>> ev = make(name=spec, model=model, tokenizer=tok, info=info, cache_dir=root / slug)
    """

    cls: Callable[..., E]
    settings: EvalSettings = dataclasses.field(default_factory=EvalSettings)
    on_call: Callable[[Any], None] | None = None

    def __call__(
        self,
        *,
        name: str,
        model: Any,
        tokenizer: Any,
        info: Mapping[str, Any] | None = None,
        cache_dir: str | Path | None = None,
    ) -> E:
        return self.cls(
            name=name,
            model=model,
            tokenizer=tokenizer,
            info=info,
            cache_dir=cache_dir,
            on_call=self.on_call,
            **self.settings.to_dict(),
        )

    def with_settings(self, **changes: Any) -> EvaluatorFactory[E]:
        """The same factory with some settings changed (e.g. ``progress=False`` inside a sweep)."""
        return dataclasses.replace(self, settings=self.settings.replace(**changes))
