"""The training-shape limit: its work counts against hand computation, its arithmetic, and the verdicts."""

from __future__ import annotations

import pytest

from adamoe.speed_limit import limit_probes, limit_seconds, relative_noise, verdict

T, H, FFN, E, K = 8, 4, 6, 2, 2


def _probes():
    return limit_probes(tokens=T, hidden=H, ffn=FFN, num_experts=E, top_k=K, largest_group=5, probe_mb=1)


def test_work_counts_match_a_hand_count():
    p = _probes()
    n = T * K
    # forward gate_up (n x H x 2I) and down (n x FFN x H); backward: two GEMMs per forward GEMM
    fwd = 2 * n * H * 2 * FFN + 2 * n * FFN * H
    assert p.total_flops == 3 * fwd + 3 * 2 * T * H * E
    assert (
        p.flops["gemm_gate_up"]
        == p.flops["gemm_grad_rows"]
        == p.flops["gemm_grad_gate_up"]
        == 2 * n * H * 2 * FFN
    )
    assert p.flops["gemm_expert_gate_up"] == 2 * 5 * H * 2 * FFN
    silu = (2 * n * FFN + n * FFN) + (
        3 * n * FFN + 2 * n * FFN
    )  # fwd reads g,u writes h; bwd reads 3, writes 2
    gather_scatter = 2 * (2 * n * H + n * H + T * H)  # fwd and bwd: gather n rows, scatter to T tokens
    assert p.total_bytes == 4 * (silu + gather_scatter)
    for fn in p.fns.values():
        fn()  # every probe runs


def test_limit_uses_the_best_throughput_and_bandwidth():
    p = _probes()
    seconds = {name: 1.0 for name in p.fns}
    seconds["gemm_down"] = 0.5  # the fastest GEMM per FLOP sets the peak
    seconds["bandwidth_copy"] = 4.0
    lim = limit_seconds(p, seconds)
    peak = max(f / seconds[k] for k, f in p.flops.items())
    assert peak == p.flops["gemm_down"] / 0.5
    bandwidth = p.bytes["bandwidth_read"] / 1.0  # the copy (2x bytes in 4 s) is slower
    assert lim["limit_seconds"] == pytest.approx(p.total_flops / peak + p.total_bytes / bandwidth)


def test_verdicts():
    assert verdict(1.2, 0.0) == "1.200"
    assert verdict(0.995, 0.0).startswith("≥1 within noise")
    assert verdict(0.95, 0.01).startswith("LIMIT BROKEN")
    assert verdict(0.95, 0.03).startswith("≥1 within noise")  # 2 x 3% noise covers a 5% shortfall
    assert relative_noise([1.0, 1.0, 1.1]) == pytest.approx(0.0)
    assert relative_noise([0.9, 1.0, 1.1]) == pytest.approx(0.1)
