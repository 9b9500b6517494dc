"""n, 95% intervals, chance flags and paired model comparisons for every number of the suite.

Why here: a dimension knows its per-item scores, the report knows which models sit side by side; this
module turns the first into interval estimates and the second into paired deltas, through
`adamoe.eval.significance` (Wilson for 0/1 scores, percentile bootstrap otherwise; exact McNemar or a
sign-flip test for deltas, Holm-adjusted within a dimension).

Per-item scores travel as `ItemScores` mappings ``{"ids": [...], "scores": [...], "chance": c}`` (JSON
as they are), keyed by metric name in `DimensionResult.items`. Every random draw comes from its own
stream, `stream(seed, *purpose)`, so adding a metric never changes another metric's interval.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adamoe.eval.significance import Estimate, bootstrap_ci, holm, paired_difference, proportion_ci

__all__ = [
    "ItemScores",
    "compare_models",
    "estimate",
    "item_scores",
    "model_pairs",
    "stream",
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


def _binary(x: np.ndarray) -> bool:
    return bool(np.isin(x, (0.0, 1.0)).all())


def estimate(entry: Mapping[str, Any], *, rng: np.random.Generator) -> Estimate | None:
    """The metric's mean with a 95% interval: Wilson for 0/1 scores, bootstrap otherwise; None when empty."""
    x = np.asarray(entry["scores"], dtype=np.float64)
    chance = entry.get("chance")
    if x.size == 0:
        return None
    if _binary(x):
        return proportion_ci(int(x.sum()), int(x.size), chance=chance)
    return bootstrap_ci(x, rng=rng, n_boot=N_BOOT, chance=chance)


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


def model_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """(model, reference) pairs: every model against the first (the dense baseline by convention),
    and each later model against the one before it (AdaMoE vs MoE in the default order)."""
    pairs = [(m, models[0]) for m in models[1:]]
    pairs += [(models[i], models[i - 1]) for i in range(2, len(models))]
    return pairs


def _paired(a: ItemScores, b: ItemScores, rng: np.random.Generator) -> dict[str, Any] | None:
    """Paired difference a − b over the items both scored (None when they share no item)."""
    pos_b = {i: k for k, i in enumerate(b["ids"])}
    shared = [(k, pos_b[i]) for k, i in enumerate(a["ids"]) if i in pos_b]
    if not shared:
        return None
    xa = np.array([a["scores"][k] for k, _ in shared])
    xb = np.array([b["scores"][k] for _, k in shared])
    return paired_difference(xa, xb, rng=rng, n_boot=N_BOOT).to_dict()


def _compare_dim(result: Mapping[str, Any], dim: str, pair: tuple[str, str], seed: int) -> dict[str, Any]:
    """{"identical": bool, "metrics": {metric: paired difference + p_holm}} for one model pair."""
    m, ref = pair
    da, db = result["results"][m]["dims"][dim], result["results"][ref]["dims"][dim]
    sig_a, sig_b = da.get("signature"), db.get("signature")
    if sig_a is not None and sig_a == sig_b:
        return {"identical": True, "metrics": {}}
    out: dict[str, Any] = {}
    for metric, entry in (da.get("items") or {}).items():
        other = (db.get("items") or {}).get(metric)
        if other is None:
            continue
        diff = _paired(entry, other, stream(seed, "delta", dim, metric, m, ref))
        if diff is not None:
            out[metric] = diff
    if out:
        adjusted = holm({k: v["p"] for k, v in out.items()})
        for k, v in out.items():
            v["p_holm"] = adjusted[k]
    return {"identical": False, "metrics": out}


def compare_models(result: Mapping[str, Any], *, seed: int) -> dict[str, dict[str, Any]]:
    """{dim: {"<model> − <reference>": comparison}} for every `model_pairs` pair and dimension.

    Two models whose outputs on a dimension (every choice picked and every generated text) are
    identical get ``{"identical": True}`` and no deltas: a difference of floating-point noise is not a
    finding.
    """
    out: dict[str, dict[str, Any]] = {}
    for dim in result["dims"]:
        out[dim] = {
            f"{m} − {ref}": {"model": m, "reference": ref, **_compare_dim(result, dim, (m, ref), seed)}
            for m, ref in model_pairs(result["models"])
        }
    return out
