"""Routing drift statistics: JS divergence by hand, the permutation test against a hand count of splits
and its calibration under no drift."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from adamoe.stats.drift import js_divergence, per_layer_js, permutation_p


def test_js_divergence_hand_values():
    # disjoint supports: 1 bit
    assert js_divergence([2, 0], [0, 4]) == pytest.approx(1.0)
    # p=[1,0], q=[.5,.5], m=[.75,.25]
    kl_pm = math.log2(1 / 0.75)
    kl_qm = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    expected = 0.5 * kl_pm + 0.5 * kl_qm
    assert expected == pytest.approx(0.3112781244591328)
    assert js_divergence([1, 0], [1, 1]) == pytest.approx(expected)
    assert js_divergence([1, 1], [1, 0]) == pytest.approx(expected)  # symmetric
    assert js_divergence([3, 1, 2], [6, 2, 4]) == 0.0  # same distribution, different totals


def test_js_divergence_bad_input():
    with pytest.raises(ValueError, match="q_counts"):
        js_divergence([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="p_counts"):
        js_divergence([0, 0], [1, 1])


def test_per_layer_js():
    out = per_layer_js({0: [1, 0], 1: [1, 1]}, {0: [0, 1], 1: [1, 1]})
    assert out == pytest.approx({0: 1.0, 1: 0.0})
    with pytest.raises(ValueError, match="shifted"):
        per_layer_js({0: [1]}, {1: [1]})


def _counts(rng: np.random.Generator, n: int, probs: list[np.ndarray]) -> list[np.ndarray]:
    """Per-layer (n, E) expert counts of n items, 20 routing choices per item and layer."""
    return [rng.multinomial(20, p, size=n).astype(float) for p in probs]


def _mean_js(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.mean([js_divergence(x.sum(axis=0), y.sum(axis=0)) for x, y in zip(a, b)]))


def test_permutation_p_matches_the_exact_share_of_splits_on_a_small_case() -> None:
    rng = np.random.default_rng(0)
    probs = [np.array([0.7, 0.1, 0.1, 0.1])]
    a, b = _counts(rng, 3, probs), _counts(rng, 3, [np.array([0.1, 0.1, 0.1, 0.7])])
    pool = [np.concatenate([x, y]) for x, y in zip(a, b)]
    observed = _mean_js(a, b)
    splits = list(itertools.combinations(range(6), 3))  # every way to pick the first group: the exact p
    exact = np.mean(
        [
            _mean_js([p[list(s)] for p in pool], [np.delete(p, s, 0) for p in pool]) >= observed - 1e-12
            for s in splits
        ]
    )
    got = permutation_p(a, b, rng=np.random.default_rng(1), n_perm=4000)
    assert got == pytest.approx(exact, abs=0.02)  # Monte Carlo over the same 20 splits
    assert permutation_p([x[:0] for x in a], b, rng=rng) is None
    # one item on a side: no permutation test (scipy needs two per side; a quick run's group can hold one)
    assert permutation_p([x[:1] for x in a], b, rng=rng) is None
    assert permutation_p(a, [x[:1] for x in b], rng=rng) is None


def test_the_permutation_test_holds_its_level_under_no_drift_and_finds_a_real_shift() -> None:
    rng = np.random.default_rng(0)
    probs = [np.full(8, 1 / 8), np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])]
    null_ps = [
        permutation_p(_counts(rng, 20, probs), _counts(rng, 20, probs), rng=rng, n_perm=99) for _ in range(60)
    ]
    assert np.mean(np.array(null_ps) <= 0.05) <= 0.15  # ~5% expected; 60 draws
    shifted = [np.roll(p, 1) * 0.5 + p * 0.5 for p in probs]  # half the mass moves one expert over
    assert permutation_p(_counts(rng, 40, probs), _counts(rng, 40, shifted), rng=rng) < 0.01
