"""Multiple-choice tasks inside a dimension (BIG-bench sets): load, score, per-item credit, per-group numbers.

Why shared: hallucination (truthful_qa, known_unknowns, ...), safety (hhh_alignment, bbq_lite_json) and
the span-based sets of adversarial/OOD all score `MCExample`s the same way — the model's pick is the
first choice with the highest log-likelihood (lm-eval's argmax, so ties count as the first choice) and
the item earns that choice's BIG-bench credit (`MCExample.credit`). Each task gives one metric
``acc_<task>`` with per-item scores (for n, interval and paired deltas) and its chance level, the
expected credit of a uniform guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from adamoe.rbench.data.bigbench import bigbench_spec, load_mc_task
from adamoe.rbench.records import MCExample
from adamoe.rbench.uncertainty import ItemScores, estimate, item_scores, stream

if TYPE_CHECKING:
    from adamoe.rbench.evaluator import ModelEvaluator

__all__ = [
    "TaskScores",
    "group_estimates",
    "item_chance",
    "load_tasks",
    "metric_name",
    "score_tasks",
    "uniform_chance",
]

TaskScores = tuple[dict[str, ItemScores], dict[str, Any]]
"""(items by metric name, details by task)."""


def metric_name(source: str) -> str:
    """'bigbench:truthful_qa' -> 'acc_truthful_qa'."""
    return "acc_" + bigbench_spec(source).replace("/", "_")


def uniform_chance(examples: Sequence[MCExample]) -> float:
    """Expected credit of picking a choice uniformly at random, averaged over items."""
    return float(np.mean([item_chance(ex) for ex in examples]))


MAX_CHARS = 2000
"""Longest prompt + choice kept (characters, ~500 tokens): hhh_alignment's longest items (16 of 221) run
to several thousand characters and would dominate the run time (and overflow small models' windows)."""
SPLIT = "all"
"""These tasks are only evaluated, never trained on, and several are small (known_unknowns: 46 items), so
every item counts: BIG-bench's whole task, not our test split."""


def _fits(ex: MCExample, max_chars: int) -> bool:
    return len(ex.context) + max(len(c) for c in ex.choices) <= max_chars


def load_tasks(
    sources: Sequence[str], *, limit: int | None, max_chars: int = MAX_CHARS
) -> dict[str, list[MCExample]]:
    """{source: examples} for BIG-bench sources ('bigbench:<task>'), every split (`SPLIT`): items longer
    than `max_chars` (prompt + longest choice) are left out, then the first `limit` (hash order) kept."""
    out: dict[str, list[MCExample]] = {}
    for source in sources:
        if not source.startswith("bigbench:"):
            raise ValueError(f"tasks: expected 'bigbench:<task>' entries, got {source!r}")
        kept = [ex for ex in load_mc_task(source, split=SPLIT) if _fits(ex, max_chars)]
        if not kept:
            raise ValueError(f"{source}: no item is shorter than {max_chars} characters")
        out[source] = kept if limit is None else kept[:limit]
    return out


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
    """Interval estimate per group (BIG-bench subtask, ANLI round) — only when there are several."""
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


def score_tasks(
    ev: ModelEvaluator, dimension: str, tasks: Mapping[str, Sequence[MCExample]], *, seed: int
) -> TaskScores:
    """Score every task; per-item credit under the metric `metric_name(task)`, per-subtask estimates."""
    items: dict[str, ItemScores] = {}
    details: dict[str, Any] = {}
    for source, examples in tasks.items():
        name = metric_name(source)
        records = ev.score(dimension, f"{dimension}/{bigbench_spec(source)}", list(examples))
        credit = [ex.credit(r.pred) for ex, r in zip(examples, records)]
        items[name] = item_scores([ex.id for ex in examples], credit, chance=uniform_chance(examples))
        details[source] = {
            "n": len(examples),
            "by_subtask": group_estimates(
                [ex.id for ex in examples],
                [str(ex.meta.get("bigbench_spec", "")) for ex in examples],
                credit,
                seed=seed,
                where=f"{dimension}/{source}",
                chances=[item_chance(ex) for ex in examples],
            ),
        }
    return items, details
