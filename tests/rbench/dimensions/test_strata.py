"""Subsets that keep every stratum: ANLI rounds under `--limit`; no-op style shifts left out of the OOD mean."""

from __future__ import annotations

import pytest

from adamoe.rbench.dimensions import adversarial as A
from adamoe.rbench.dimensions.adversarial import AdversarialConfig, AdversarialDimension
from adamoe.rbench.dimensions.ood import OODConfig, OODDimension
from adamoe.rbench.perturb.attacks import mc_prediction
from adamoe.rbench.records import NLIItem
from tests.rbench.helpers import FakeEvaluator


class AttackableFake(FakeEvaluator):
    """The canned evaluator plus what the attack loop needs: no cache, uniform verdicts."""

    def __init__(self) -> None:
        super().__init__()
        self.extras: dict = {}
        self.computed = {"attack": 0}

    def lookup(self, *_: object) -> None:
        return None

    def remember(self, *_: object) -> None:
        pass

    def announce(self, *_: object) -> None:
        pass

    def predict(self, example):
        return mc_prediction([0.0] * len(example.choices), example.label)


def _anli(rounds=(1, 2, 3), **_: object) -> list[NLIItem]:
    """Rounds in order, 10 items each, like facebook/anli concatenated."""
    return [
        NLIItem(
            id=f"r{r}-{i}",
            premise="A man sleeps.",
            hypothesis="A man rests.",
            label=i % 3,
            source=f"anli-r{r}",
        )
        for r in rounds
        for i in range(10)
    ]


def test_anli_limit_is_stratified_over_rounds_and_reported_per_round(monkeypatch) -> None:
    monkeypatch.setattr(A, "load_anli", _anli)
    dim = AdversarialDimension(
        AdversarialConfig(tasks=["anli"], per_source=None, attacks={"c": {"kinds": ["swap"]}})
    )
    data = dim.load(limit=6, seed=0)
    assert [it.group for it in data].count("anli-r1") == 2
    assert {it.group for it in data} == {"anli-r1", "anli-r2", "anli-r3"}  # not just the first round
    result = dim.run(AttackableFake(), data, seed=0)
    assert set(result.details["clean_by_group"]) == {"anli-r1", "anli-r2", "anli-r3"}
    assert all(e["n"] == 2 for e in result.details["clean_by_group"].values())
    # per_source caps each source the same stratified way; rounds from the spec are passed on
    dim2 = AdversarialDimension(
        AdversarialConfig(tasks=["anli:1,3"], per_source=4, attacks={"c": {"kinds": ["swap"]}})
    )
    assert [it.group for it in dim2.load(limit=None, seed=0)] == ["anli-r1", "anli-r3"] * 2


def test_a_style_shift_that_changes_too_few_items_is_marked_and_not_counted() -> None:
    cfg = OODConfig(
        id="generated:product", sets=[], pairs={}, shifts=["upper", "formal"], n_generated=6, min_changed=0.5
    )
    dim = OODDimension(cfg)
    data = dim.load(limit=6, seed=0)
    result = dim.run(FakeEvaluator(), data, seed=0)
    shifts = result.details["shifts"]
    assert shifts["upper"]["changed"] == 6 and shifts["upper"]["counted"] is True
    assert (
        shifts["formal"]["changed"] < 3 and shifts["formal"]["counted"] is False
    )  # "formal" rewrites ~nothing
    ood_ids = result.items["ood_acc_mean"]["ids"]
    assert ood_ids and all(i.startswith("upper:") for i in ood_ids)  # only the counted shift is pooled
    assert result.estimates["gap_max"]["shift"] == "upper"
    for name in ("id_acc", "ood_acc_mean", "gap_mean", "gap_max"):
        est = result.estimates[name]
        assert est["n"] > 0 and est["low"] <= est["value"] <= est["high"]
    with pytest.raises(ValueError, match="pairs"):
        OODDimension(OODConfig(pairs={"x": {"sets": []}}))
