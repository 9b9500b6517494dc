"""The model section's dial follows its testbed's k: loads (K, 0.75K, 0.5K), AdaMoE top-(K+1), the
compiled list naming the loads below K; the top-2 default is exactly the values the bench always had."""

from __future__ import annotations

import pytest

from adamoe.bench.settings import BENCH_TESTBED, ModelBenchSettings, dial_for_k

ANCHORS = ("dense", "moe_hf_grouped_mm", "moe_adamoe")


def test_top2_dial_is_todays_bench_by_hand():
    dial = dial_for_k(2)
    assert dial == {
        "target_loads": (2.0, 1.5, 1.0),
        "top_k": 3,
        "compiled": (*ANCHORS, "adamoe_load1.5", "adamoe_load1"),
    }
    ms = ModelBenchSettings()  # the defaults documented in docs/performance.md
    assert ms.testbed == BENCH_TESTBED == "core50-e8-top2"
    assert (ms.target_loads, ms.top_k, ms.compiled) == (dial["target_loads"], dial["top_k"], dial["compiled"])


def test_top4_dial_by_hand():
    assert dial_for_k(4) == {
        "target_loads": (4.0, 3.0, 2.0),
        "top_k": 5,
        "compiled": (*ANCHORS, "adamoe_load3", "adamoe_load2"),
    }


def test_with_testbed_sets_the_name_and_its_dial_and_keeps_the_rest():
    base = ModelBenchSettings(batches=(1,), repeats=2)
    assert base.with_testbed("core50-e8-top2") == base
    ms = base.with_testbed("core25-e8-top4")
    assert (ms.testbed, ms.target_loads, ms.top_k) == ("core25-e8-top4", (4.0, 3.0, 2.0), 5)
    assert ms.compiled[-2:] == ("adamoe_load3", "adamoe_load2")
    assert (ms.batches, ms.repeats, ms.num_null) == ((1,), 2, 8)


def test_with_an_unknown_testbed_is_one_line_naming_the_field():
    with pytest.raises(ValueError, match=r"^testbed: expected one of .*core25-e8-top4.*'nope'"):
        ModelBenchSettings().with_testbed("nope")
