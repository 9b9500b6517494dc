"""Evaluate a model on multiple-choice tasks and report the paper's columns: Acc, Load, both FLOPs figures.

Routing statistics are recorded per item over exactly the tokens the scorer runs (padding masked out)
and cached with the item's scores, so a fresh, a resumed and a fully cached run report the same Load
and FLOPs. Load of a dataset = mean number of true experts per token per MoE layer on it. FLOPs
(:mod:`adamoe.eval.flops`): ``expert_flops_pct`` = routed-expert FLOPs vs top-``baseline_k`` routing;
``model_flops_pct`` = whole-model forward FLOPs vs the same model with top-k routing (the paper's %FLOPs;
``None`` when the model config does not describe an MoE decoder, e.g. Mo-LoRA on a dense model).
Acc is the task's own scoring (:class:`~adamoe.eval.records.MCRecord`): on multi-gold BIG-bench items
any correct choice counts (``multiple_choice_grade``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from adamoe.data.examples import MCExample
from adamoe.eval.flops import DEFAULT_CONTEXT_LEN, DecoderShape, expert_flops_pct, flops_figures
from adamoe.eval.records import MCResult
from adamoe.eval.scoring import score_multiple_choice
from adamoe.eval.significance import bootstrap_ci, chance_level, proportion_ci
from adamoe.stats import ItemRoutingRecorder, routing_sources, summarise_packs
from adamoe.utils.seeding import derive_seed

__all__ = [
    "TaskResult",
    "acc_interval",
    "evaluate_tasks",
    "flops_columns",
    "routing_of",
    "score_with_routing",
]


@dataclass(kw_only=True)
class TaskResult:
    """One task's row: accuracy, and for routed models Load and both FLOPs figures (else None)."""

    task: str
    n: int
    acc: float
    acc_norm: float
    load: float | None = None
    expert_flops_pct: float | None = None
    model_flops_pct: float | None = None
    chance: float | None = None
    acc_ci: dict[str, Any] | None = None
    acc_norm_ci: dict[str, Any] | None = None
    routing: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The report row (``acc_ci``/``acc_norm_ci``: 95% intervals of ``acc``/``acc_norm`` as Estimate mappings)."""
        return {
            "task": self.task,
            "n": self.n,
            "acc": self.acc,
            "acc_ci": self.acc_ci,
            "chance": self.chance,
            "acc_norm": self.acc_norm,
            "acc_norm_ci": self.acc_norm_ci,
            "load": self.load,
            "expert_flops_pct": self.expert_flops_pct,
            "model_flops_pct": self.model_flops_pct,
        }


def routing_of(result: MCResult, *, baseline_k: int | None, order: Sequence[str] = ()) -> dict[str, Any]:
    """The routing summary of a scored run from its per-item packs, summed in example-id order (so the
    figure does not depend on which items came from the cache); {} when nothing was recorded."""
    if not result.routing:
        return {}
    packs = [result.routing[i] for i in sorted(result.routing)]
    return summarise_packs(packs, result.routing_shapes, baseline_k=baseline_k, order=order) or {}


def flops_columns(
    model: nn.Module,
    routing: dict[str, Any],
    *,
    baseline_k: int | None,
    context_len: float = DEFAULT_CONTEXT_LEN,
) -> dict[str, Any]:
    """``expert_flops_pct`` and ``model_flops_pct`` (with the FLOPs per token behind it) of a routing
    summary of ``model`` (an ``adamoe.stats`` summary); None where undefined."""
    out: dict[str, Any] = {"expert_flops_pct": None, "model_flops_pct": None}
    if not routing or not baseline_k:
        return out
    out["expert_flops_pct"] = expert_flops_pct(routing["load"], baseline_k)
    config = getattr(model, "config", None)
    try:
        shape = DecoderShape.from_config(config) if config is not None else None
    except (AttributeError, TypeError, ValueError):
        shape = None  # not a transformers decoder config
    if shape is not None and shape.num_experts > 0:
        # null experts per router: counts cover E + m experts, fractions the E true ones
        num_null = max(
            len(s["expert_counts"]) - len(s["expert_fraction"]) for s in routing["layers"].values()
        )
        out.update(
            flops_figures(
                shape, load=routing["load"], baseline_k=baseline_k, num_null=num_null, context_len=context_len
            )
        )
    return out


def score_with_routing(
    model: nn.Module, tokenizer: Any, examples: Sequence[MCExample], *, order: Sequence[str], **kwargs: Any
) -> MCResult:
    """:func:`score_multiple_choice` (``kwargs`` passed on), recording each item's routing when ``order``
    (the names of ``model``'s routing sources) is non-empty, so :func:`routing_of` can summarise the run."""
    if not order:
        return score_multiple_choice(model, tokenizer, examples, **kwargs)
    with ItemRoutingRecorder(model) as rec:
        return score_multiple_choice(model, tokenizer, examples, item_routing=rec, **kwargs)


def acc_interval(result: MCResult, *, chance: float | None, purpose: str) -> dict[str, Any] | None:
    """95% interval of ``result.acc`` (mean credit): Wilson when every credit is 0 or 1, else (partial
    credit) an item bootstrap on a stream derived from ``purpose``; None without records."""
    credits = np.array([r.credit for r in result.records], dtype=np.float64)
    if not len(credits):
        return None
    if np.isin(credits, (0.0, 1.0)).all():
        return proportion_ci(int(credits.sum()), len(credits), chance=chance).to_dict()
    rng = np.random.default_rng(derive_seed(0, f"acc_ci:{purpose}"))
    return bootstrap_ci(credits, rng=rng, chance=chance).to_dict()


def acc_norm_interval(result: MCResult, *, chance: float | None) -> dict[str, Any] | None:
    """Wilson 95% interval of ``result.acc_norm`` (lm-eval's length-normalised pick, 0/1 per item)."""
    hits = [r.correct_norm for r in result.records]
    return proportion_ci(sum(hits), len(hits), chance=chance).to_dict() if hits else None


def evaluate_tasks(
    model: nn.Module,
    tokenizer: Any,
    tasks: dict[str, Sequence[MCExample]],
    *,
    baseline_k: int | None = None,
    batch_size: int = 16,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    mode: str = "prefix",
) -> list[TaskResult]:
    """Score each task; with routing sources present, record Load and both FLOPs figures beside accuracy.

    ``cache_dir`` holds one JSONL score cache per task (scores and per-item routing sums); ``mode`` is
    the scorer's (``"full"``: every choice as its own sequence, no shared-prefix reuse).
    """
    order = [name for name, _ in routing_sources(model)]
    results = []
    for name, examples in tasks.items():
        cache = Path(cache_dir) / f"{name}.jsonl" if cache_dir else None
        res = score_with_routing(
            model,
            tokenizer,
            examples,
            order=order,
            batch_size=batch_size,
            cache=cache,
            progress=progress,
            mode=mode,
        )
        routing = routing_of(res, baseline_k=baseline_k, order=order)
        flops = flops_columns(model, routing, baseline_k=baseline_k)
        chance = chance_level([len(e.choices) for e in examples]) if examples else None
        results.append(
            TaskResult(
                task=name,
                n=len(res.records),
                acc=res.acc,
                acc_norm=res.acc_norm,
                chance=chance,
                acc_ci=acc_interval(res, chance=chance, purpose=name),
                acc_norm_ci=acc_norm_interval(res, chance=chance),
                load=routing["load"] if routing else None,
                expert_flops_pct=flops["expert_flops_pct"],
                model_flops_pct=flops["model_flops_pct"],
                routing={**routing, **{k: v for k, v in flops.items() if v is not None}} if routing else {},
            )
        )
    return results
