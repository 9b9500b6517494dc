"""Intervals and paired model comparisons of the suite, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adamoe.rbench.uncertainty import (
    compare_models,
    estimate,
    item_scores,
    model_pairs,
    stream,
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


def _result(models: dict[str, dict]) -> dict:
    return {
        "models": list(models),
        "dims": ["d"],
        "results": {m: {"dims": {"d": v}} for m, v in models.items()},
    }


def test_model_pairs_put_every_model_against_the_first_and_the_one_before() -> None:
    assert model_pairs(["dense", "moe", "adamoe"]) == [
        ("moe", "dense"),
        ("adamoe", "dense"),
        ("adamoe", "moe"),
    ]
    assert model_pairs(["only"]) == []


def test_paired_deltas_use_the_shared_items_and_identical_models_get_none() -> None:
    dense = {"signature": "s1", "items": {"acc": item_scores(["a", "b", "c", "d"], [1, 0, 0, 1])}}
    moe = {"signature": "s2", "items": {"acc": item_scores(["b", "c", "d", "e"], [1, 1, 1, 0])}}
    twin = {"signature": "s1", "items": {"acc": item_scores(["a", "b", "c", "d"], [1, 0, 0, 1])}}
    out = compare_models(_result({"dense": dense, "moe": moe, "twin": twin}), seed=0)["d"]
    d = out["moe − dense"]["metrics"]["acc"]
    # shared items b, c, d: moe 1, 1, 1 vs dense 0, 0, 1 -> +2/3; two discordant pairs, both for moe
    assert d["diff"] == pytest.approx(2 / 3) and d["n"] == 3 and d["test"] == "mcnemar-exact"
    assert d["p"] == pytest.approx(0.5) and d["p_holm"] == pytest.approx(0.5)
    assert out["twin − dense"] == {"model": "twin", "reference": "dense", "identical": True, "metrics": {}}
    assert out["twin − moe"]["identical"] is False
