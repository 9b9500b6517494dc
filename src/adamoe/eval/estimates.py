"""Per-item scores of one metric, and the interval estimates and differences built from them.

Why here: any evaluation that keeps a score per item (0/1 correctness, a credit, a toxicity) wants the
same three things from it: its mean with a 95% interval, the difference to another system on the items
both scored (paired) or on other items (unpaired), and per-group intervals. This module turns
`ItemScores` into those through :mod:`adamoe.eval.significance` (Wilson for 0/1 scores, percentile
bootstrap otherwise; exact McNemar or a sign-flip test for paired deltas) and scipy (unpaired).

Per-item scores travel as `ItemScores` mappings ``{"ids": [...], "scores": [...], "chance": c}`` (JSON
as they are). Every random draw comes from its own stream, `stream(seed, *purpose)`, so adding a metric
never changes another metric's interval.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adamoe.data.examples import MCExample
from adamoe.eval.significance import Estimate, bootstrap_ci, paired_difference, proportion_ci

__all__ = [
    "N_BOOT",
    "ItemScores",
    "estimate",
    "group_estimates",
    "item_chance",
    "item_scores",
    "paired_by_id",
    "stream",
    "uniform_chance",
    "unpaired_difference",
]

ItemScores = dict[str, Any]
"""{"ids": [str, ...], "scores": [float, ...], "chance": float | None}: one metric's per-item scores."""

N_BOOT = 2000


def stream(seed: int, *purpose: str) -> np.random.Generator:
    """An independent generator for one purpose (e.g. ('ci', 'safety', 'refusal_rate')) under a run seed."""
    key = zlib.crc32("\x1f".join(purpose).encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, key]))


def item_scores(ids: Sequence[str], scores: Sequence[float], *, chance: float | None = None) -> ItemScores:
    """Per-item scores of one metric (same length as ids, ids unique)."""
    if len(ids) != len(scores):
        raise ValueError(f"scores: expected one score per id ({len(ids)}), got {len(scores)}")
    if len(set(ids)) != len(ids):
        raise ValueError("ids: expected unique item ids within a metric")
    return {"ids": [str(i) for i in ids], "scores": [float(s) for s in scores], "chance": chance}


def estimate(entry: Mapping[str, Any], *, rng: np.random.Generator) -> Estimate | None:
    """The metric's mean with a 95% interval: Wilson for 0/1 scores, bootstrap otherwise; None when empty."""
    x = np.asarray(entry["scores"], dtype=np.float64)
    chance = entry.get("chance")
    if x.size == 0:
        return None
    if np.isin(x, (0.0, 1.0)).all():
        return proportion_ci(int(x.sum()), int(x.size), chance=chance)
    return bootstrap_ci(x, rng=rng, n_boot=N_BOOT, chance=chance)


def paired_by_id(a: ItemScores, b: ItemScores, *, rng: np.random.Generator) -> dict[str, Any] | None:
    """Paired difference a − b over the items both scored (matched by id; None when they share none)."""
    pos_b = {i: k for k, i in enumerate(b["ids"])}
    shared = [(k, pos_b[i]) for k, i in enumerate(a["ids"]) if i in pos_b]
    if not shared:
        return None
    xa = np.array([a["scores"][k] for k, _ in shared])
    xb = np.array([b["scores"][k] for _, k in shared])
    return paired_difference(xa, xb, rng=rng, n_boot=N_BOOT).to_dict()


def unpaired_difference(
    a: Sequence[float], b: Sequence[float], *, rng: np.random.Generator
) -> dict[str, Any]:
    """mean(a) − mean(b) of two independent samples (different items): percentile bootstrap interval with
    each side resampled on its own, and a two-sided permutation p-value (both from scipy.stats), e.g. ID
    accuracy minus accuracy on another data set. Returns the JSON form (value, low, high, n, p, method)."""
    from scipy import stats

    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if xa.size == 0 or xb.size == 0:
        raise ValueError("a, b: expected at least one score on each side")

    def diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return x.mean(axis=axis) - y.mean(axis=axis)

    boot_rng, perm_rng = rng.spawn(2)
    ci = stats.bootstrap((xa, xb), diff, n_resamples=N_BOOT, method="percentile", rng=boot_rng)
    perm = stats.permutation_test((xa, xb), diff, n_resamples=N_BOOT, rng=perm_rng)
    low, high = ci.confidence_interval
    return {
        "value": float(diff(xa, xb)),
        "low": float(low),
        "high": float(high),
        "n": int(min(xa.size, xb.size)),
        "p": float(perm.pvalue),
        "method": "bootstrap + permutation (unpaired)",
    }


def item_chance(ex: MCExample) -> float:
    """Expected credit of a uniform guess on one item (its choices' mean credit, `MCExample.scores`)."""
    return float(np.mean(ex.scores)) if ex.scores is not None else 1 / len(ex.choices)


def uniform_chance(examples: Sequence[MCExample]) -> float:
    """Expected credit of picking a choice uniformly at random, averaged over items."""
    return float(np.mean([item_chance(ex) for ex in examples]))


def group_estimates(
    ids: Sequence[str],
    groups: Sequence[str],
    scores: Sequence[float],
    *,
    seed: int,
    where: str,
) -> dict[str, dict[str, Any] | None]:
    """Interval estimate per group (task, subset), by group name; empty unless there are several groups."""
    members: dict[str, list[int]] = {}
    for k, g in enumerate(groups):
        members.setdefault(g, []).append(k)
    if len(members) < 2:
        return {}
    out = {}
    for g, idx in sorted(members.items()):
        entry = item_scores([ids[k] for k in idx], [scores[k] for k in idx])
        est = estimate(entry, rng=stream(seed, "ci", where, g))
        out[g] = est.to_dict() if est is not None else None
    return out
