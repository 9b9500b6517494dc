"""Routing statistics vs naive per-token computations; packing for all-reduce; the recorder."""

import math

import pytest
import torch
from torch import nn

from adamoe.routing import TopKRouter, TopPRouter
from adamoe.routing.base import Routing
from adamoe.stats import (
    SHARPNESS_BINS,
    LayerStats,
    RoutingRecorder,
    collect_routings,
    experts_to_mass,
    flops_report,
    router_entropy,
)
from tests.stats.helpers import moe_stack


def naive_experts_to_half_mass(prob_row: list[float], num_experts: int) -> int:
    true = prob_row[:num_experts]
    total = sum(true)
    acc, n = 0.0, 0
    for v in sorted(true, reverse=True):
        acc += v / total
        n += 1
        if acc >= 0.5 - 1e-12:
            return n
    return n


def naive_entropy(prob_row: list[float]) -> float:
    return -sum(v * math.log(v) for v in prob_row if v > 0)


def naive_stats(routings: list[Routing]) -> dict:
    tokens = true_slots = null_slots = bypass = 0
    ent = 0.0
    n_total = routings[0].num_experts + routings[0].num_null
    counts = [0] * n_total
    sharp = [0, 0, 0, 0]
    for r in routings:
        for idx_row, prob_row in zip(r.indices.tolist(), r.probs.tolist()):
            tokens += 1
            n_true = sum(1 for e in idx_row if 0 <= e < r.num_experts)
            true_slots += n_true
            null_slots += sum(1 for e in idx_row if e >= r.num_experts)
            bypass += n_true == 0
            for e in idx_row:
                if e >= 0:
                    counts[e] += 1
            ent += naive_entropy(prob_row)
            sharp[min(naive_experts_to_half_mass(prob_row, r.num_experts), 4) - 1] += 1
    return {
        "tokens": tokens,
        "true_slots": true_slots,
        "null_slots": null_slots,
        "bypass": bypass,
        "entropy_sum": ent,
        "counts": counts,
        "sharpness": sharp,
    }


def flat(d, prefix=""):
    """Nested summary dict -> flat {path: number} (pytest.approx does not nest)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        elif isinstance(v, list):
            out.update({f"{prefix}{k}[{i}]": x for i, x in enumerate(v)})
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_experts_to_mass_hand_example():
    probs = torch.tensor(
        [
            [0.60, 0.10, 0.10, 0.05, 0.05, 0.05, 0.03, 0.02],  # 1
            [0.30, 0.30, 0.10, 0.10, 0.05, 0.05, 0.05, 0.05],  # 0.3, 0.6 -> 2
            [0.30, 0.15, 0.15, 0.10, 0.10, 0.10, 0.05, 0.05],  # 0.3, 0.45, 0.6 -> 3
            [0.125] * 8,  # 4 experts reach exactly 0.5 -> 4 (bin "4+")
            [0.10] * 5 + [0.50 / 3] * 3,  # 1/6 * 3 = 0.5 -> 3
        ]
    )
    assert experts_to_mass(probs, 8).tolist() == [1, 2, 3, 4, 3]
    # nulls are excluded and the true part renormalised: true [0.2, 0.1] of mass 0.3 -> 1 expert
    with_null = torch.tensor([[0.2, 0.1, 0.7]])
    assert experts_to_mass(with_null, 2).tolist() == [1]


def test_entropy_hand_example():
    probs = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.25] * 4, [1.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(
        router_entropy(probs), torch.tensor([math.log(2), math.log(4), 0.0]), atol=1e-6, rtol=0
    )


def _routings():
    torch.manual_seed(0)
    topk = TopKRouter(hidden_size=16, num_experts=8, top_k=3, num_null=4).eval()
    topp = TopPRouter(hidden_size=16, num_experts=8, num_null=4, top_p=0.5).eval()
    with torch.no_grad():
        return [
            topk(2.0 * torch.randn(40, 16)),
            topk(torch.randn(24, 16)),
            topp(3.0 * torch.randn(30, 16)),
            topk(0.05 * torch.randn(10, 16)),  # near-uniform router: 4 experts to reach half -> "4+"
        ]


def test_layer_stats_match_naive_over_several_batches():
    routings = _routings()
    stats = LayerStats(8, 4)
    for r in routings:
        stats.update(r)
    want = naive_stats(routings)
    assert stats.tokens == want["tokens"] == 104
    assert stats.true_slots == want["true_slots"]
    assert stats.null_slots == want["null_slots"]
    assert stats.bypass_tokens == want["bypass"]
    assert 0 < want["bypass"] < want["tokens"], "test needs some bypassing tokens"
    assert stats.counts.tolist() == want["counts"]
    assert stats.sharpness.tolist() == want["sharpness"]
    assert all(b > 0 for b in want["sharpness"]), "test needs every sharpness bin"
    assert stats.entropy_sum == pytest.approx(want["entropy_sum"], rel=1e-5)

    s = stats.summary(baseline_k=3)
    assert s["load"] == pytest.approx(want["true_slots"] / 104)
    assert s["bypass_rate"] == pytest.approx(want["bypass"] / 104)
    assert s["null_slots_per_token"] == pytest.approx(want["null_slots"] / 104)
    assert s["entropy"] == pytest.approx(want["entropy_sum"] / 104, rel=1e-5)
    assert s["flops_pct"] == pytest.approx(100 * s["load"] / 3)
    assert s["sharpness"] == pytest.approx({b: n / 104 for b, n in zip(SHARPNESS_BINS, want["sharpness"])})
    true_counts = want["counts"][:8]
    assert s["expert_fraction"] == pytest.approx([c / sum(true_counts) for c in true_counts])
    assert "flops_pct" not in stats.summary()


def test_hand_routing_stats():
    r = Routing(
        indices=torch.tensor([[0, 2], [3, 2], [1, -1]]),
        weights=torch.ones(3, 2),
        probs=torch.tensor([[0.5, 0.3, 0.1, 0.1], [0.1, 0.1, 0.4, 0.4], [0.45, 0.45, 0.05, 0.05]]),
        logits=torch.zeros(3, 4),
        num_experts=2,
        num_null=2,
    )
    stats = LayerStats(2, 2)
    stats.update(r, keep_tokens=True)
    assert stats.per_token_load == [1, 0, 1]
    s = stats.summary(baseline_k=2)
    assert s["load"] == pytest.approx(2 / 3) and s["bypass_rate"] == pytest.approx(1 / 3)
    assert s["flops_pct"] == pytest.approx(100 * (2 / 3) / 2)
    assert s["expert_counts"] == [1.0, 1.0, 2.0, 1.0]
    assert s["sharpness"]["1"] == pytest.approx(1.0)  # every token: the top true expert holds >= 50%


def test_pack_round_trip_and_sum_equals_merged_stats():
    routings = _routings()
    a, b, merged = LayerStats(8, 4), LayerStats(8, 4), LayerStats(8, 4)
    a.update(routings[0])
    for r in routings[1:]:
        b.update(r)
    for r in routings:
        merged.update(r)
    clone = LayerStats(8, 4)
    clone.load_tensor(a.as_tensor())
    for f in ("tokens", "true_slots", "null_slots", "bypass_tokens"):
        assert getattr(clone, f) == getattr(a, f)
    assert clone.entropy_sum == a.entropy_sum
    assert torch.equal(clone.counts, a.counts) and torch.equal(clone.sharpness, a.sharpness)
    # what all_reduce does across two processes: sum the packed tensors
    summed = LayerStats(8, 4)
    summed.load_tensor(a.as_tensor() + b.as_tensor())
    assert flat(summed.summary(baseline_k=3)) == pytest.approx(flat(merged.summary(baseline_k=3)))


def test_summary_in_a_one_process_group_is_the_local_summary(tmp_path):
    """(Two processes: tests/stats/test_distributed.py.)"""
    import torch.distributed as dist

    layer = moe_stack(1)
    with RoutingRecorder(layer) as rec:
        layer(torch.randn(20, 16))
    before = rec.summary()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert flat(rec.summary()) == pytest.approx(flat(before))
        assert flat(rec.summary()) == pytest.approx(flat(before))  # reading twice never double-counts
    finally:
        dist.destroy_process_group()
    assert rec.layers["0"].tokens == 20


def test_recorder_attaches_aggregates_and_detaches():
    model = moe_stack(2)
    with pytest.raises(ValueError, match="model"):
        RoutingRecorder(nn.Linear(2, 2))
    x = torch.randn(30, 16)
    with RoutingRecorder(model, baseline_k=2, keep_tokens=True) as rec:
        model(x)
        model(x)
    assert set(rec.layers) == {"0", "1"}
    loads = []
    for name, layer in zip(("0", "1"), model):
        r = layer.last_routing
        assert rec.layers[name].tokens == 60
        assert rec.layers[name].load == pytest.approx(r.load())
        assert rec.layers[name].per_token_load == r.true_experts_per_token().tolist() * 2
        loads.append(r.load())
    s = rec.summary()
    assert s["load"] == pytest.approx(sum(loads) / 2)
    assert s["flops_pct"] == pytest.approx(100 * s["load"] / 2)
    assert s["flops_reduction_pct"] == pytest.approx(100 - s["flops_pct"])
    assert all(layer.routing_callbacks == [] for layer in model)
    model(x)  # detached: nothing more is recorded
    assert rec.layers["0"].tokens == 60
    assert [r is layer.last_routing for r, layer in zip(collect_routings(model), model)] == [True, True]
    rec.reset()
    assert rec.summary() == {"layers": {}, "load": 0.0}


def test_flops_report_by_hand():
    rep = flops_report(load=1.5, baseline_k=2, hidden_size=16, intermediate_size=8, num_experts=4, num_null=4)
    assert rep["expert_flops"] == 1.5 * 6 * 16 * 8
    assert rep["baseline_expert_flops"] == 2 * 6 * 16 * 8
    assert rep["expert_flops_pct"] == 75.0
    assert rep["router_flops"] == 2 * 16 * 8 and rep["baseline_router_flops"] == 2 * 16 * 4


@torch.no_grad()
def test_recorder_token_mask_drops_padding():
    from types import SimpleNamespace

    model = moe_stack(1)
    x = torch.randn(2, 5, 16)
    # batch of 2, 3 cached + 5 new positions; padding on the left of row 1
    attention = torch.tensor([[1] * 8, [0, 0, 0, 0, 0, 1, 1, 1]])
    with RoutingRecorder(model) as rec:
        rec.on_batch(SimpleNamespace(attention_mask=attention, input_ids=torch.zeros(2, 5, dtype=torch.long)))
        assert rec.token_mask.tolist() == [True] * 5 + [False, False, True, True, True]
        model(x)
    kept = model[0].last_routing.true_experts_per_token()[rec.token_mask]
    assert rec.layers["0"].tokens == 8
    assert rec.layers["0"].load == pytest.approx(float(kept.float().mean()))
