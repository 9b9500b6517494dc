"""Recording routing statistics reads nothing back to the host (a sync per MoE layer on CUDA), checked on
CPU with tests/sync_probe.py; the sums it keeps equal naive per-token counts of the real tokens."""

from __future__ import annotations

import pytest
import torch

from adamoe.routing.base import Routing
from adamoe.stats import ItemRoutingRecorder, RoutingRecorder, RoutingTap, summarise_packs
from tests.stats.helpers import moe_stack
from tests.sync_probe import NoHostSync

MASK = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 0, 1]], dtype=torch.bool)  # 8 real of 12


def routings(model: torch.nn.Module) -> dict[str, Routing]:
    torch.manual_seed(0)
    with torch.no_grad():
        model(torch.randn(3, 4, 16))
    return {name: layer.last_routing for name, layer in model.named_children()}


def naive(routing: Routing, mask: torch.Tensor) -> tuple[int, int, list[int]]:
    """(tokens, true slots, slots per expert) of the real tokens, by a loop over them."""
    tokens = slots = 0
    counts = [0] * (routing.num_experts + routing.num_null)
    for t in range(routing.num_tokens):
        if not mask.reshape(-1)[t]:
            continue
        tokens += 1
        for e in routing.indices[t].tolist():
            counts[e] += 1
            slots += e < routing.num_experts
    return tokens, slots, counts


def publish(model: torch.nn.Module, found: dict[str, Routing], times: int = 2) -> None:
    for _ in range(times):
        for name, layer in model.named_children():
            layer.publish(found[name])


def test_recorder_keeps_device_sums_of_the_real_tokens_without_a_host_read():
    model = moe_stack(2, top_k=3)
    found = routings(model)
    with RoutingRecorder(model, keep_tokens=True) as rec:
        rec.token_mask = MASK.reshape(-1)
        with NoHostSync():
            publish(model, found)
    for name, routing in found.items():
        tokens, slots, counts = naive(routing, MASK)
        stats = rec.layers[name]
        assert (stats.tokens, stats.true_slots) == (2 * tokens, 2 * slots)
        assert stats.counts.tolist() == [2 * c for c in counts]
        real = routing.true_experts_per_token()[MASK.reshape(-1)].tolist()
        assert stats.per_token_load == real * 2
    assert rec.summary()["tokens"] == 16


def test_item_recorder_reads_the_host_once_per_batch_not_per_layer():
    model = moe_stack(2, top_k=3)
    found = routings(model)
    with ItemRoutingRecorder(model) as rec:
        rec.set_batch(["a", "b", "c"], MASK)
        with NoHostSync():
            publish(model, found)
        items = rec.items  # the host read happens here
    summary = summarise_packs(items.values(), rec.shapes)
    for name, routing in found.items():
        tokens, slots, _ = naive(routing, MASK)
        assert summary["layers"][name]["tokens"] == 2 * tokens
        assert summary["layers"][name]["load"] == pytest.approx(slots / tokens)
    assert items["c"]["0"][0] == 2  # one real token in each of the two forwards


def test_tap_terms_and_recording_without_a_host_read():
    model = moe_stack(2, top_k=3)
    found = routings(model)
    with RoutingTap(model) as tap:
        tap.start(MASK)  # a host mask: its real positions are found here, once per forward
        with NoHostSync():
            publish(model, found, times=1)
            terms = tap.terms(aux_kind="null_aware")
    want = [naive(found[name], MASK) for name in tap.names]
    assert terms.tokens == [w[0] for w in want]
    assert terms.true_slots.tolist() == [w[1] for w in want]
    assert tap.recorder.layers["0"].tokens == want[0][0]


def test_the_probe_catches_the_old_per_layer_read():
    """The probe can fail: a boolean selection of the real tokens (what recording used to do) is refused."""
    routing = routings(moe_stack(1))["0"]
    with NoHostSync(), pytest.raises(AssertionError, match="host read-back"):
        routing.select(MASK.reshape(-1))
