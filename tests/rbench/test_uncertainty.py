"""Paired model comparisons of the suite, checked against hand computations."""

from __future__ import annotations

import pytest

from adamoe.eval.estimates import item_scores
from adamoe.rbench.uncertainty import compare_models, model_pairs


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
