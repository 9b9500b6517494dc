"""OOD statistics count each underlying item once: surface shifts averaged per item, neighbours pooled,
no-op shifts left out, per-set gaps Holm-adjusted, no maximum over gaps. Reference: hand arithmetic on
canned predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from adamoe.data.examples import MCExample
from adamoe.eval.records import MCRecord
from adamoe.eval.significance import holm
from adamoe.rbench.dimensions.ood import OODConfig, OODDimension
from tests.rbench.helpers import FakeEvaluator

pytestmark = pytest.mark.usefixtures("offline_wheel")


class StageFake(FakeEvaluator):
    """Right on every item except those `wrong[stage]` lists (by id)."""

    def __init__(self, wrong: dict[str, set[str]]) -> None:
        super().__init__()
        self.wrong = wrong

    def score(self, dimension: str, stage: str, examples: Sequence[MCExample]) -> list[MCRecord]:
        out = []
        for ex in examples:
            ll = [0.0] * len(ex.choices)
            pick = (ex.label + 1) % len(ex.choices) if ex.id in self.wrong.get(stage, set()) else ex.label
            ll[pick] = 1.0
            out.append(MCRecord.build(ex, ll, [False] * len(ex.choices)))
        return out


def test_surface_shifts_are_averaged_per_item_and_neighbours_pooled_once() -> None:
    cfg = OODConfig(shifts=["lower", "random_case", "upper"], min_changed=0.5)  # RTE->CB, ARC-E->ARC-C
    dim = OODDimension(cfg)
    data = dim.load(limit=6, seed=0)
    data.id_items = [replace(it, text=it.text.upper()) for it in data.id_items]  # "upper" is now a no-op
    ids = [it.id for it in data.id_items]
    n = len(ids)
    wrong = {
        "ood/lower": set(ids[:2]),
        "ood/random_case": set(ids[:1]),
        "ood/data:cb": {data.sets["data:cb"][0].id},
    }
    result = dim.run(StageFake(wrong), data, seed=0)
    shifts = result.details["shifts"]
    assert shifts["lower"]["counted"] and shifts["random_case"]["counted"] and not shifts["upper"]["counted"]
    assert shifts["upper"]["changed"] == 0 and shifts["lower"]["kind"] == "surface"
    assert shifts["data:cb"]["kind"] == "dataset"
    # one score per ID item: its mean over the two counted shifts (item 0 wrong twice, item 1 once)
    surface = result.items["surface_acc"]
    assert surface["ids"] == ids and surface["scores"] == [0.0, 0.5] + [1.0] * (n - 2)
    assert result.estimates["surface_acc"]["n"] == n
    assert result.metrics["surface_acc"] == pytest.approx((n - 1.5) / n)
    # paired gap of chance-normalised credit, ID (all right) minus the per-item shift mean
    chance = np.array([1 / len(it.choices) for it in data.id_items])
    shift_mean = (np.array(surface["scores"]) - chance) / (1 - chance)
    assert result.estimates["surface_gap"]["value"] == pytest.approx(float(np.mean(1.0 - shift_mean)))
    assert result.estimates["surface_gap"]["n"] == n
    # neighbours: every item of both sets once, unpaired gap with a p-value
    domain = result.items["domain_acc"]
    assert len(domain["ids"]) == len(data.sets["data:cb"]) + len(data.sets["data:arc_challenge"])
    assert sum(domain["scores"]) == len(domain["ids"]) - 1
    assert 0 <= result.estimates["domain_gap"]["p"] <= 1
    # every counted per-set gap carries its Holm-adjusted p; the no-op shift is not tested
    tested = {k: v["gap"]["p"] for k, v in shifts.items() if v["counted"]}
    assert {k: shifts[k]["gap"]["p_holm"] for k in tested} == pytest.approx(holm(tested))
    assert "p_holm" not in shifts["upper"]["gap"]
    assert not any("max" in k for k in result.metrics) and "ood_acc_mean" not in result.metrics


def test_ood_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="pairs"):
        OODDimension(OODConfig(pairs={"x": {"sets": []}}))
    with pytest.raises(ValueError, match=r"ood\.sets: unknown task\(s\) \['snarks'\]"):
        OODConfig(sets=["snarks"]).validate()
    with pytest.raises(ValueError, match=r"ood\.shifts: shift 'informal' was removed"):
        OODConfig(shifts=["upper", "informal"]).validate()
    with pytest.raises(ValueError, match="appears twice"):
        OODConfig(sets=["cb"], pairs={"x": {"id": "sst2", "sets": ["cb"]}}).validate()
