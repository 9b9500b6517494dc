"""Routing drift between two sets of items: Jensen-Shannon divergence of expert histograms and its
permutation test.

Why here: the routing statistics of `adamoe.stats` say how a model routes on one set of tokens; drift
compares two sets (a shifted or attacked set against its matched reference). The histograms count
routing choices per expert, true and null experts alike (routing to a null expert is a choice).

- `js_divergence`: Jensen-Shannon divergence of two histograms in bits (scipy's Jensen-Shannon
  distance, squared), bounded by 1; `per_layer_js` does it per MoE layer.
- `permutation_p`: the two item sets are pooled and split at random into groups of the same sizes
  (`scipy.stats.permutation_test`, exact when there are few splits); p = share of splits whose mean
  per-layer JS is at least the observed one, (1 + hits) / (1 + n_perm) for random splits.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = ["expert_histograms", "js_divergence", "per_layer_js", "permutation_p"]

K = TypeVar("K")


def js_divergence(p_counts: Sequence[float] | np.ndarray, q_counts: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence (bits) of two histograms of counts, normalised first."""
    from scipy.spatial.distance import jensenshannon

    p, q = (np.asarray(c, dtype=np.float64).reshape(-1) for c in (p_counts, q_counts))
    for name, x in (("p_counts", p), ("q_counts", q)):
        if x.size == 0 or (x < 0).any() or not np.isfinite(x).all() or x.sum() <= 0:
            raise ValueError(f"{name}: expected a non-empty vector of finite non-negative counts, not all 0")
    if p.shape != q.shape:
        raise ValueError(f"q_counts: expected {p.size} bins like p_counts, got {q.size}")
    return float(jensenshannon(p, q, base=2) ** 2)


def per_layer_js(
    clean: Mapping[K, Sequence[float] | np.ndarray], shifted: Mapping[K, Sequence[float] | np.ndarray]
) -> dict[K, float]:
    """JS divergence of expert histograms per layer, for layers present in both mappings."""
    if set(clean) != set(shifted):
        missing = sorted(map(str, set(clean) ^ set(shifted)))
        raise ValueError(f"shifted: expected the same layers as clean, differing layers {missing}")
    return {layer: js_divergence(clean[layer], shifted[layer]) for layer in clean}


def expert_histograms(summary: Mapping[str, Any]) -> dict[str, list[float]]:
    """Per-layer expert-choice counts (true and null experts) of a routing summary (`summarise_packs`)."""
    return {name: list(s["expert_counts"]) for name, s in summary["layers"].items()}


def _mean_js(a: np.ndarray, b: np.ndarray, bounds: np.ndarray) -> float:
    """Mean over layers of the JS between the summed histograms of item rows `a` and `b`."""
    ha, hb = a.sum(axis=0), b.sum(axis=0)
    vals = [
        js_divergence(ha[lo:hi], hb[lo:hi])
        for lo, hi in itertools.pairwise(bounds)
        if ha[lo:hi].sum() > 0 and hb[lo:hi].sum() > 0
    ]
    return float(np.mean(vals)) if vals else 0.0


def permutation_p(
    ref: Sequence[np.ndarray], other: Sequence[np.ndarray], *, rng: np.random.Generator, n_perm: int = 200
) -> float | None:
    """Permutation p-value of the mean per-layer JS between two item sets (module doc).

    ref, other: one ``(n_items, E+m)`` array of per-item expert counts per layer, same layers. None when
    either side has fewer than two items (scipy's test needs two per side; a quick run's small groups can
    hold one) or no layer.
    """
    from scipy import stats

    if not ref or not other or ref[0].shape[0] < 2 or other[0].shape[0] < 2:
        return None
    bounds = np.cumsum([0, *[c.shape[1] for c in ref]])
    pool = np.concatenate([np.concatenate(ref, axis=1), np.concatenate(other, axis=1)])
    n_ref = ref[0].shape[0]
    result = stats.permutation_test(
        (np.arange(n_ref), np.arange(n_ref, pool.shape[0])),
        lambda x, y: _mean_js(pool[x], pool[y], bounds),
        n_resamples=n_perm,
        alternative="greater",
        vectorized=False,
        rng=rng,
    )
    return float(result.pvalue)
