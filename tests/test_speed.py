"""The benchmark harness runs end to end on tiny shapes and reports consistent ratios (no timing asserts)."""

from __future__ import annotations

import pytest

from adamoe.speed import BenchSettings, format_table, interleaved_medians, run_all


def test_interleaved_medians_calls_each_function_round_robin():
    order = []
    med = interleaved_medians(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, warmup=1, repeats=3
    )
    assert order == ["a", "b"] * 4
    assert set(med) == {"a", "b"} and all(v >= 0 for v in med.values())


def test_quick_run_reports_every_section():
    res = run_all(BenchSettings(threads=1).shrink())
    tr = res["training"]
    assert set(tr["seconds"]) == {
        "adamoe_default",
        "adamoe_grouped",
        "adamoe_torch_grouped_mm",
        "hf_grouped_mm",
        "hf_eager",
    }
    lim = tr["limit"]
    assert lim["limit_seconds"] == pytest.approx(lim["gemm_seconds"] + lim["elementwise_seconds"])
    # 18·N·H·I + 6·T·H·E with N = T·k = 1024, H = 128, I = 448, E = 8, T = 512
    assert lim["total_GFLOP"] == pytest.approx((18 * 1024 * 128 * 448 + 6 * 512 * 128 * 8) / 1e9)
    for name, ratio in tr["ratio_to_limit"].items():
        assert ratio == pytest.approx(tr["seconds"][name] / lim["limit_seconds"])
        assert tr["verdict"][name].startswith("LIMIT") == (name in tr["limit_broken"])
    # under pytest the default is the documented rule, reported with its reason
    assert any(c["reason"].startswith("rule:") for c in res["default_backend"].values())
    ns = res["null_saving"]
    assert ns["load"]["adamoe_m8k3"] < 2.0 and ns["load_ratio"] == pytest.approx(
        ns["load"]["adamoe_m8k3"] / 2
    )
    for row in res["decode"]["rows"]:
        assert row["distinct_true_experts_null"] <= row["distinct_experts"] <= 8 * row["tokens"]
    table = format_table(res)
    assert "Training shape" in table and "AdaMoE saving" in table and "Decode" in table
    assert "Default backend" in table
