"""Reporting statistics against hand computations, naive loops and a simulated coverage check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adamoe.eval.significance import (
    Estimate,
    bootstrap_ci,
    chance_level,
    holm,
    mcnemar_exact,
    paired_difference,
    proportion_ci,
    split_half_floor,
    within_noise,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- Estimate


def test_estimate_fmt_and_chance_flag():
    est = Estimate(value=0.413, low=0.370, high=0.456, n=500)
    assert est.fmt() == "41.3 [37.0, 45.6] (n=500)"
    assert est.above_chance is None
    above = Estimate(value=0.413, low=0.370, high=0.456, n=500, chance=0.25)
    assert above.above_chance is True
    assert above.fmt() == "41.3 [37.0, 45.6] (n=500, chance 25.0)"
    at = Estimate(value=0.413, low=0.370, high=0.456, n=500, chance=0.4)
    assert at.above_chance is False
    assert at.fmt() == "41.3 [37.0, 45.6] (n=500, chance 40.0, not above chance)"
    assert at.to_dict()["above_chance"] is False
    assert Estimate(value=2.5, low=2.25, high=2.75, n=7).fmt(scale=1, digits=2) == "2.50 [2.25, 2.75] (n=7)"


# ---------------------------------------------------------------- Wilson


def wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    center = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(n) / (n + z * z) * math.sqrt(p * (1 - p) + z * z / (4 * n))
    return center - half, center + half


def test_wilson_hand_values():
    est = proportion_ci(8, 10)
    assert (est.value, est.n, est.method) == (0.8, 10, "wilson")
    assert est.low == pytest.approx(0.4902, abs=1e-4)
    assert est.high == pytest.approx(0.9433, abs=1e-4)
    for k, n in [(0, 20), (3, 7), (250, 500), (499, 500)]:
        low, high = wilson_by_hand(k, n)
        est = proportion_ci(k, n)
        assert (est.low, est.high) == pytest.approx((max(low, 0.0), min(high, 1.0)), abs=1e-12)
    assert proportion_ci(0, 20).low == 0.0
    assert proportion_ci(20, 20).high == 1.0
    assert proportion_ci(8, 10, level=0.99).low < proportion_ci(8, 10).low


def test_wilson_matches_scipy_when_available():
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(8, 10), (41, 100), (1, 3)]:
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        est = proportion_ci(k, n)
        assert (est.low, est.high) == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_wilson_bad_input():
    with pytest.raises(ValueError, match="successes"):
        proportion_ci(11, 10)
    with pytest.raises(ValueError, match="n:"):
        proportion_ci(0, 0)
    with pytest.raises(ValueError, match="level"):
        proportion_ci(1, 2, level=95)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_mean_matches_naive_loop():
    """The count-weighted fast mean equals indexing each resample (same draws, naive stat)."""
    x = rng(1).normal(size=(3, 40))
    fast = bootstrap_ci(x, rng=rng(7), n_boot=300)
    naive = bootstrap_ci(x, rng=rng(7), n_boot=300, stat=lambda r: float(np.mean(r)))
    assert (fast.value, fast.low, fast.high) == pytest.approx((naive.value, naive.low, naive.high), abs=1e-12)
    assert fast.n == 40 and fast.method == "bootstrap items x 3 seeds"


def test_bootstrap_coverage_bernoulli():
    """95% intervals over 200 simulated datasets of 200 Bernoulli(0.6) items cover 0.6 ~95% of the time."""
    gen = rng(2024)
    data = (gen.random((200, 200)) < 0.6).astype(float)
    covered = 0
    for row in data:
        est = bootstrap_ci(row, rng=gen, n_boot=400)
        covered += est.low <= 0.6 <= est.high
    assert 0.91 <= covered / 200 <= 0.98


def test_hierarchical_bootstrap_widens_with_seed_variation():
    items = (rng(3).random(150) < 0.5).astype(float)
    same = np.tile(items, (4, 1))
    only_items = bootstrap_ci(items, rng=rng(9), n_boot=500)
    identical_seeds = bootstrap_ci(same, rng=rng(9), n_boot=500)
    # identical seeds: resampling them changes nothing, and the item draws are the same
    assert (identical_seeds.low, identical_seeds.high) == pytest.approx((only_items.low, only_items.high))
    shifted = same + np.array([[-0.15], [-0.05], [0.05], [0.15]])
    hier = bootstrap_ci(shifted, rng=rng(9), n_boot=500)
    flat = bootstrap_ci(shifted.mean(axis=0), rng=rng(9), n_boot=500)
    assert hier.high - hier.low > 1.3 * (flat.high - flat.low)


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="per_item"):
        bootstrap_ci([1.0, float("nan")], rng=rng())
    with pytest.raises(ValueError, match="per_item"):
        bootstrap_ci(np.zeros((2, 2, 2)), rng=rng())
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci([1.0, 0.0], rng=rng(), n_boot=0)


def test_chance_level():
    assert chance_level([4, 4, 4]) == pytest.approx(0.25)
    assert chance_level([2, 4]) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="num_choices"):
        chance_level([])
    with pytest.raises(ValueError, match="num_choices"):
        chance_level([0, 2])


# ---------------------------------------------------------------- paired tests


def test_mcnemar_hand_values():
    assert mcnemar_exact(9, 1) == pytest.approx(0.021484375)  # 2·(1 + 10) / 2^10
    assert mcnemar_exact(1, 9) == pytest.approx(0.021484375)
    assert mcnemar_exact(5, 0) == pytest.approx(0.0625)  # 2 / 2^5
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 0) == 1.0


def test_paired_difference_uses_mcnemar_for_binary_scores():
    # 9 items only a gets right, 1 only b, 30 both, 10 neither
    a = np.array([1] * 9 + [0] * 1 + [1] * 30 + [0] * 10)
    b = np.array([0] * 9 + [1] * 1 + [1] * 30 + [0] * 10)
    res = paired_difference(a, b, rng=rng(), n_boot=500)
    assert res.test == "mcnemar-exact"
    assert res.p == pytest.approx(0.02148, abs=1e-5)
    assert res.diff == pytest.approx(8 / 50)
    assert res.n == 50 and res.significant
    assert res.low <= res.diff <= res.high
    assert res.fmt().startswith("+16.0 [")


def test_paired_difference_identical_arrays():
    binary = (rng(4).random(60) < 0.5).astype(float)
    graded = rng(5).random((3, 60))
    for x in (binary, graded):
        res = paired_difference(x, x.copy(), rng=rng(), n_boot=300, n_perm=500)
        assert (res.diff, res.low, res.high, res.p) == (0.0, 0.0, 0.0, 1.0)
        assert not res.significant


def test_sign_flip_exact_hand_value():
    # differences 1, 2, 3 (plus a zero): of the 8 sign patterns only +++ and --- reach |sum| = 6
    a = np.array([1.5, 2.0, 3.5, 0.7])
    b = np.array([0.5, 0.0, 0.5, 0.7])
    res = paired_difference(a, b, rng=rng(), n_boot=200)
    assert res.test == "sign-flip exact"
    assert res.p == pytest.approx(2 / 8)
    assert res.diff == pytest.approx(6 / 4)


def test_sign_flip_permutation_detects_a_real_difference():
    gen = rng(6)
    b = gen.random((2, 80))
    a = b + 0.1 + 0.05 * gen.normal(size=(2, 80))
    res = paired_difference(a, b, rng=rng(), n_boot=300, n_perm=999)
    assert res.test == "sign-flip permutation"
    assert res.p == pytest.approx(1 / 1000)  # no flip reaches the observed mean
    assert res.low > 0.05 and res.significant


def test_paired_seeds_interval_is_the_bootstrap_of_differences():
    """With paired seeds the interval is the two-way bootstrap of a − b (same draws, by linearity)."""
    gen = rng(11)
    a, b = gen.random((3, 50)), gen.random((3, 50))
    res = paired_difference(a, b, rng=rng(12), n_boot=400)
    ref = bootstrap_ci(a - b, rng=rng(12).spawn(2)[0], n_boot=400)
    assert (res.diff, res.low, res.high) == pytest.approx((ref.value, ref.low, ref.high), abs=1e-12)


def test_unpaired_seeds_allow_different_seed_counts():
    gen = rng(13)
    items = gen.random(50)
    a = items + gen.normal(scale=0.2, size=(4, 1))
    b = items + gen.normal(scale=0.2, size=(2, 1))
    res = paired_difference(a, b, rng=rng(), n_boot=400, paired_seeds=False)
    assert res.diff == pytest.approx(a.mean() - b.mean())
    assert res.low < res.diff < res.high


def test_paired_difference_bad_input():
    with pytest.raises(ValueError, match="items"):
        paired_difference(np.zeros(5), np.zeros(6), rng=rng())
    with pytest.raises(ValueError, match="paired_seeds=False"):
        paired_difference(np.zeros((2, 5)), np.zeros((3, 5)), rng=rng())


def test_holm_hand_example():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm({"arc": 0.5, "piqa": 0.4}) == pytest.approx({"arc": 0.8, "piqa": 0.8})
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="pvalues"):
        holm([0.1, 1.5])


# ---------------------------------------------------------------- noise floor


def js_of_means(half_a: np.ndarray, half_b: np.ndarray) -> float:
    """JS divergence (bits) between the halves' mean distributions, written out per bin."""
    p, q = half_a.mean(axis=0), half_b.mean(axis=0)
    total = 0.0
    for pi, qi in zip(p, q):
        mi = (pi + qi) / 2
        total += 0.5 * (pi * math.log2(pi / mi) if pi > 0 else 0.0)
        total += 0.5 * (qi * math.log2(qi / mi) if qi > 0 else 0.0)
    return total


def test_split_half_floor_separates_a_real_shift():
    gen = rng(8)
    alpha = np.ones(8)
    clean = gen.dirichlet(alpha, size=400)
    again = gen.dirichlet(alpha, size=400)
    shifted = gen.dirichlet(alpha + np.linspace(0, 1.5, 8), size=400)
    floor = split_half_floor(clean, js_of_means, rng=rng(10), n_splits=100)
    assert floor.n == 400 and floor.n_splits == 100
    assert 0 < floor.mean <= floor.p95
    drift = js_of_means(clean, shifted)
    assert floor.p95 < drift and not within_noise(drift, floor)
    assert within_noise(js_of_means(clean, again), floor)


def test_split_half_floor_bad_input():
    with pytest.raises(ValueError, match="samples"):
        split_half_floor(np.ones(5), js_of_means, rng=rng())


def test_t_interval_matches_scipys_one_sample_t_test():
    from scipy.stats import ttest_1samp

    from adamoe.eval.significance import t_interval

    x = [0.3, -0.1, 0.25, 0.05]
    ref = ttest_1samp(x, 0.0).confidence_interval(0.9)
    assert t_interval(x, level=0.9) == pytest.approx((ref.low, ref.high))
    assert all(np.isnan(v) for v in t_interval([1.0]))
