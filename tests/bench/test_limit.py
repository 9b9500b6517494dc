"""The re-based training limit: its work counts against a hand count, its per-round formula on a
hand-computed example, and the verdicts."""

from __future__ import annotations

import pytest
import torch

from adamoe.bench.limit import (
    COPY_PROBE,
    ROUTER_GEMMS,
    SWIGLU_GEMMS,
    limit_probes,
    limit_rounds,
    verdict,
)

T, H, FFN, E, K = 8, 4, 6, 2, 2


def _probes():
    return limit_probes(tokens=T, hidden=H, ffn=FFN, num_experts=E, top_k=K)


def test_work_counts_match_a_hand_count():
    p = _probes()
    n = T * K
    assert set(p.flops) == {*SWIGLU_GEMMS, *ROUTER_GEMMS}
    # forward gate_up (n x H x 2I) and down (n x I x H); backward: two GEMMs per forward GEMM
    fwd = 2 * n * H * 2 * FFN + 2 * n * FFN * H
    assert sum(p.flops[g] for g in SWIGLU_GEMMS) == 3 * fwd == 18 * n * H * FFN
    assert all(p.flops[g] == 2 * T * H * E for g in ROUTER_GEMMS)
    assert p.total_flops == 18 * n * H * FFN + 6 * T * H * E
    silu = (2 * n * FFN + n * FFN) + (
        3 * n * FFN + 2 * n * FFN
    )  # fwd reads g,u writes h; bwd reads 3, writes 2
    gather_scatter = 2 * (2 * n * H + n * H + T * H)  # fwd and bwd: gather n rows, scatter to T tokens
    assert p.total_bytes == 4 * (silu + gather_scatter)
    assert p.copy_bytes == pytest.approx(p.total_bytes, abs=8)  # the copy moves the same bytes
    for fn in p.fns.values():
        fn()  # every probe runs


def test_each_probe_is_one_mm_of_the_layers_shape():
    """The gate_up probe really computes (N, H) x (H, 2I): its output buffer has that shape."""
    p = _probes()
    out = p.fns["gemm_gate_up"]()
    assert out.shape == (T * K, 2 * FFN)
    assert p.fns["gemm_grad_gate_up"]().shape == (2 * FFN, H)
    assert p.fns["gemm_router"]().shape == (T, E)


def test_limit_per_round_by_hand():
    p = _probes()
    gemms = [*SWIGLU_GEMMS, *ROUTER_GEMMS]
    # round 0: every GEMM 1 ms, copy 2 ms; round 1: every GEMM 2 ms, copy 1 ms
    times = {g: [1e-3, 2e-3] for g in gemms} | {COPY_PROBE: [2e-3, 1e-3]}
    lim = limit_rounds(p, times)
    # limit[r] = sum_g t_g[r] + B / (B_copy / t_copy[r])
    hand = [
        9 * 1e-3 + p.total_bytes / (p.copy_bytes / 2e-3),
        9 * 2e-3 + p.total_bytes / (p.copy_bytes / 1e-3),
    ]
    assert lim["per_round"] == pytest.approx(hand)
    assert lim["limit_seconds"] == pytest.approx(sum(hand) / 2)  # median of two rounds
    assert lim["gemm_seconds"] == pytest.approx(13.5e-3)
    assert lim["gemm_GFLOPs"] == pytest.approx(p.total_flops / 13.5e-3 / 1e9)


def test_a_slow_shape_is_priced_at_its_own_rate():
    """Re-based: one slow GEMM adds its own time, not its FLOPs at the fastest shape's rate."""
    p = _probes()
    times = {g: [1e-3, 1e-3] for g in [*SWIGLU_GEMMS, *ROUTER_GEMMS]} | {COPY_PROBE: [0.0 + 1e-9] * 2}
    base = limit_rounds(p, times)["per_round"][0]
    times["gemm_down"] = [5e-3, 5e-3]
    assert limit_rounds(p, times)["per_round"][0] - base == pytest.approx(4e-3)


def test_verdicts():
    assert verdict({"ratio": 1.2, "low": 1.1, "high": 1.3}) == "1.200 [1.100, 1.300]"
    assert verdict({"ratio": 0.99, "low": 0.97, "high": 1.01}) == "0.990 [0.970, 1.010]"  # CI reaches 1
    assert verdict({"ratio": 0.95, "low": 0.93, "high": 0.97}).startswith("LIMIT BROKEN")


def test_probes_are_deterministic():
    a, b = _probes(), _probes()
    torch.testing.assert_close(a.fns["gemm_down"](), b.fns["gemm_down"]())
