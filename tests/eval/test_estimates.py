"""Per-item scores and their estimates, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adamoe.data.examples import MCExample
from adamoe.eval.estimates import (
    estimate,
    group_estimates,
    item_chance,
    item_scores,
    paired_by_id,
    stream,
    uniform_chance,
    unpaired_difference,
)


def test_binary_scores_get_a_wilson_interval_continuous_ones_a_bootstrap() -> None:
    est = estimate(item_scores(["a", "b", "c", "d"], [1, 1, 1, 0], chance=0.5), rng=stream(0, "t"))
    # Wilson by hand: p = 3/4, n = 4, z = 1.959964
    z, n, p = 1.959963984540054, 4, 0.75
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert est.method == "wilson" and est.n == 4 and est.chance == 0.5
    assert (est.low, est.high) == pytest.approx((centre - half, centre + half))
    assert est.above_chance is False  # the interval reaches below 0.5
    cont = estimate(item_scores(["a", "b", "c"], [0.2, 0.4, 0.9]), rng=stream(0, "t"))
    assert (
        cont.method == "bootstrap"
        and cont.value == pytest.approx(0.5)
        and 0.2 <= cont.low <= cont.high <= 0.9
    )
    assert estimate(item_scores([], []), rng=stream(0, "t")) is None
    with pytest.raises(ValueError, match="unique"):
        item_scores(["a", "a"], [1, 0])


def test_streams_are_independent_per_purpose_and_reproducible() -> None:
    assert stream(3, "ci", "x").integers(1 << 30) == stream(3, "ci", "x").integers(1 << 30)
    assert stream(3, "ci", "x").integers(1 << 30) != stream(3, "ci", "y").integers(1 << 30)
    assert stream(3, "ci", "x").integers(1 << 30) != stream(4, "ci", "x").integers(1 << 30)


def test_unpaired_difference_covers_the_true_difference_about_95_percent() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    for k in range(200):
        a, b = rng.normal(0.3, 1.0, 60), rng.normal(0.0, 1.0, 40)
        est = unpaired_difference(a, b, rng=stream(k, "cov"))
        assert est["value"] == pytest.approx(a.mean() - b.mean())
        hits += est["low"] <= 0.3 <= est["high"]
    assert 0.88 <= hits / 200 <= 0.99  # percentile bootstrap: close to nominal at these sizes


def test_unpaired_difference_p_value_holds_its_level_and_finds_a_shift() -> None:
    rng = np.random.default_rng(1)
    null = [
        unpaired_difference(rng.normal(size=30), rng.normal(size=20), rng=stream(k, "p"))["p"]
        for k in range(100)
    ]
    assert np.mean(np.array(null) <= 0.05) <= 0.12  # ~5% expected
    assert unpaired_difference(rng.normal(1.0, 1, 40), rng.normal(size=40), rng=stream(0, "p"))["p"] < 0.01


def test_paired_by_id_uses_only_the_shared_items() -> None:
    a = item_scores(["a", "b", "c", "d"], [1, 0, 0, 1])
    b = item_scores(["d", "c", "b", "e"], [1, 1, 1, 0])
    d = paired_by_id(b, a, rng=stream(0, "p"))
    # shared b, c, d: 1, 1, 1 vs 0, 0, 1 -> +2/3, two discordant pairs both one way: McNemar p = 0.5
    assert d["diff"] == pytest.approx(2 / 3) and d["n"] == 3 and d["p"] == pytest.approx(0.5)
    assert paired_by_id(a, item_scores(["x"], [1]), rng=stream(0, "p")) is None


def test_chance_counts_multi_gold_credit_and_groups_get_their_own_intervals() -> None:
    two = MCExample(id="a", context="c", choices=["x", "y"], label=0, task="t")
    credit = MCExample(
        id="b", context="c", choices=["x", "y", "z", "w"], label=0, task="t", scores=(1, 1, 0, 0)
    )
    assert item_chance(two) == 0.5 and item_chance(credit) == 0.5  # 2 of 4 choices earn credit
    assert (
        uniform_chance([two, MCExample(id="c", context="c", choices=list("wxyz"), label=1, task="t")])
        == 0.375
    )
    ids, groups, scores = ["1", "2", "3", "4", "5"], ["rte", "rte", "sst2", "sst2", "sst2"], [1, 0, 1, 1, 0]
    out = group_estimates(ids, groups, scores, seed=0, where="w")
    assert list(out) == ["rte", "sst2"]
    assert (out["rte"]["value"], out["rte"]["n"]) == (0.5, 2)
    assert out["sst2"]["value"] == pytest.approx(2 / 3) and out["sst2"]["method"] == "wilson"
    assert group_estimates(ids, ["rte"] * 5, scores, seed=0, where="w") == {}  # one group: nothing to split
