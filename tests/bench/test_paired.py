"""Paired per-round ratios: the point estimate by hand, the interval against scipy's bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from adamoe.bench.paired import fmt_ratio, paired_ratio, per_round

A = [1.10, 1.32, 0.98, 1.25, 1.17, 1.40, 1.05]
B = [1.00, 1.10, 0.90, 1.00, 1.05, 1.20, 1.00]


def test_point_estimate_is_the_geometric_mean_of_per_round_ratios():
    ratios = [a / b for a, b in zip(A, B)]
    hand = math.prod(ratios) ** (1 / len(ratios))
    got = paired_ratio(A, B)
    assert got["ratio"] == pytest.approx(hand, rel=1e-12)
    assert got["n"] == 7 and got["level"] == 0.95
    assert got["low"] < got["ratio"] < got["high"]


def test_interval_matches_scipys_percentile_bootstrap():
    got = paired_ratio(A, B, n_boot=20000, seed=1)
    logs = np.log(np.array(A) / np.array(B))
    ref = stats.bootstrap(
        (logs,), np.mean, n_resamples=20000, method="percentile", random_state=np.random.default_rng(2)
    ).confidence_interval
    # two independent Monte-Carlo runs of the same percentile bootstrap agree to their sampling error
    assert got["low"] == pytest.approx(math.exp(ref.low), abs=0.004)
    assert got["high"] == pytest.approx(math.exp(ref.high), abs=0.004)


def test_pairing_removes_a_shared_drift():
    """Both candidates slow down together round by round: the paired ratio sees a constant 1.2."""
    drift = [1.0, 1.7, 0.8, 1.3, 2.0]
    got = paired_ratio([1.2 * d for d in drift], drift)
    assert got["ratio"] == pytest.approx(1.2) and got["low"] == pytest.approx(1.2)
    assert got["high"] == pytest.approx(1.2)


def test_swapping_the_pair_inverts_the_ratio_and_its_interval():
    ab, ba = paired_ratio(A, B, seed=3), paired_ratio(B, A, seed=3)
    assert ab["ratio"] * ba["ratio"] == pytest.approx(1.0)
    assert ab["low"] * ba["high"] == pytest.approx(1.0) and ab["high"] * ba["low"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("num", "den", "match"),
    [([1.0], [1.0], ">= 2 rounds"), ([1.0, 2.0], [1.0], ">= 2 rounds"), ([1.0, 0.0], [1.0, 1.0], "positive")],
)
def test_bad_input_is_refused(num, den, match):
    with pytest.raises(ValueError, match=match):
        paired_ratio(num, den)


def test_helpers():
    assert per_round({"a": [1.0, 2.0], "b": [10.0, 20.0]}, "a", "b") == [11.0, 22.0]
    assert fmt_ratio({"ratio": 1.23456, "low": 1.2, "high": 1.3}) == "1.235 [1.200, 1.300]"
    assert fmt_ratio(None) == "n/a"
