"""The layer sections run end to end on tiny shapes and report consistent paired ratios with provenance
(no timing asserts); the AdaMoE layer's nulls do not tie."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from adamoe.bench.paired import fmt_ratio
from adamoe.bench.provenance import PROVENANCE_FIELDS
from adamoe.bench.run import SECTIONS, run_all
from adamoe.bench.settings import BenchSettings
from adamoe.bench.tables import format_table
from adamoe.bench.training import jittered_nulls, moe_layer
from adamoe.experts import swiglu_act


@pytest.fixture(scope="module")
def result():
    return run_all(BenchSettings(threads=1).shrink())


def test_training_section_reports_paired_ratios_to_the_limit(result):
    tr = result["training"]
    names = {"adamoe_default", "adamoe_grouped", "adamoe_torch_grouped_mm", "hf_grouped_mm", "hf_eager"}
    names.add("adamoe_grouped_torch_act")
    assert set(tr["seconds"]) == names and set(tr["default_vs_hf"]) == {"hf_grouped_mm", "hf_eager"}
    lim = tr["limit"]
    assert len(lim["per_round"]) == tr["rounds"] == 3
    # 18·N·H·I + 6·T·H·E with N = T·k = 1024, H = 128, I = 448, E = 8, T = 512
    assert lim["total_GFLOP"] == pytest.approx((18 * 1024 * 128 * 448 + 6 * 512 * 128 * 8) / 1e9)
    for name, r in tr["ratio_to_limit"].items():
        per_round = [t / lim_r for t, lim_r in zip(tr["times"][name], lim["per_round"])]
        assert r["low"] <= r["ratio"] <= r["high"] and min(per_round) <= r["ratio"] <= max(per_round)
        assert tr["verdict"][name].startswith("LIMIT") == (name in tr["limit_broken"])
    assert any(c["reason"].startswith("rule:") for c in result["default_backend"].values())


def test_training_section_pairs_the_activation_kernels_in_the_same_rounds(result):
    tr = result["training"]
    r, times = tr["grouped_vs_torch_act"], tr["times"]
    per_round = [a / b for a, b in zip(times["adamoe_grouped"], times["adamoe_grouped_torch_act"])]
    assert r["n"] == len(per_round) == tr["rounds"] and r["low"] <= r["ratio"] <= r["high"]
    assert min(per_round) <= r["ratio"] <= max(per_round)
    assert tr["act_kernel_built"] is swiglu_act.available()
    line = [x for x in format_table(result).splitlines() if x.startswith("adamoe_grouped vs ")]
    assert line == [
        f"adamoe_grouped vs adamoe_grouped_torch_act: {fmt_ratio(r)}× (SiLU-gate C++ kernels "
        + ("built)" if tr["act_kernel_built"] else "UNAVAILABLE: both ran the torch path)")
    ]
    unbuilt = {**result, "training": {**tr, "act_kernel_built": False}}
    assert "kernels UNAVAILABLE: both ran the torch path)" in format_table(unbuilt)


def test_null_saving_reads_the_load_of_the_timed_layer(result):
    ns = result["null_saving"]
    assert ns["null_init"] == "copy_jitter" and 0 < ns["load"]["adamoe_m8k3"] < 3.0
    assert ns["load_ratio"] == pytest.approx(ns["load"]["adamoe_m8k3"] / 2)
    assert ns["time_ratio"]["n"] == 3


def test_decode_rows_pair_against_same_bytes_reads(result):
    for row in result["decode"]["rows"]:
        assert row["distinct_true_experts_null"] <= row["distinct_experts"] <= 8 * row["tokens"]
        per_expert = (2 * 128 * 256 + 256 * 128) * 4  # gate_up (2I, H) + down (H, I), fp32
        assert row["bytes"]["adamoe"] == row["distinct_experts"] * per_expert
        assert row["bytes"]["adamoe_null"] == row["distinct_true_experts_null"] * per_expert
        assert set(row["ratio_to_same_bytes"]) == set(row["seconds"]) == set(row["ratio_to_probe_limit"])
        assert {"adamoe", "adamoe_unfused"} <= set(row["seconds"])  # the fused layer call and its twin
        fused = row["fused_vs_unfused"]
        assert fused["n"] == len(row["times"]["adamoe"]) and fused["low"] <= fused["ratio"] <= fused["high"]


def test_the_record_has_provenance_and_is_json(result):
    assert set(result["provenance"]) == {*PROVENANCE_FIELDS, "load_average_end"}
    assert result["provenance"]["threads"] == 1
    json.loads(json.dumps(result, default=str))
    table = format_table(result)
    for heading in ("commit ", "Training shape", "AdaMoE saving", "Decode", "Default backend"):
        assert heading in table


def test_jittered_nulls_do_not_tie_with_their_twins():
    s = BenchSettings().shrink()
    base = moe_layer(s, num_experts=8, num_null=0, top_k=2, backend="auto", hidden=64, ffn=32)
    ada = moe_layer(s, num_experts=8, num_null=8, top_k=3, backend="auto", hidden=64, ffn=32)
    jittered_nulls(base, ada, seed=0)
    w, w0 = ada.router.weight.detach(), base.router.weight.detach()
    torch.testing.assert_close(w[:8], w0)
    assert not torch.equal(w[8:], w0)
    torch.testing.assert_close(w[8:], w0, rtol=0.1, atol=0)  # twins: 1% relative jitter
    logits = F.linear(torch.randn(512, 64, generator=torch.Generator().manual_seed(0)), w)
    assert not (logits[:, 8:] == logits[:, :8]).any()  # no exact tie anywhere
    for a, b in zip(ada.experts.parameters(), base.experts.parameters()):
        torch.testing.assert_close(a, b)


def test_unknown_section_is_refused_and_the_cli_lists_the_same_sections():
    from adamoe.commands import bench as verb

    assert verb.SECTIONS == SECTIONS
    with pytest.raises(ValueError, match="sections: unknown"):
        run_all(BenchSettings(), sections=("nope",))


def test_the_verb_writes_bench_json_with_provenance(tmp_path, capsys):
    from adamoe.cli import main

    run_dir = tmp_path / "run"
    argv = ["bench", "--quick", "--sections", "decode", "--set", "threads=1", "--set", "repeats=2"]
    assert main([*argv, "--run-dir", str(run_dir)]) == 0
    saved = json.loads((run_dir / "bench.json").read_text())
    assert set(saved) >= {"provenance", "decode", "settings"} and "training" not in saved
    assert set(saved["provenance"]) >= set(PROVENANCE_FIELDS)
    assert "Decode" in (run_dir / "bench.md").read_text() and "Decode" in capsys.readouterr().out
