"""RoutingTap: aux/z losses and load over real tokens, checked against unpadded per-sequence forwards."""

from __future__ import annotations

import pytest
import torch

from adamoe.losses import routing_aux_loss, z_loss
from adamoe.routing.base import Routing
from adamoe.stats import RoutingTap, collect_routings, mean_load
from tests.train.tiny_setup import tiny_moe_lm


def concat(routings: list[Routing]) -> Routing:
    first = routings[0]
    return Routing(
        indices=torch.cat([r.indices for r in routings]),
        weights=torch.cat([r.weights for r in routings]),
        probs=torch.cat([r.probs for r in routings]),
        logits=torch.cat([r.logits for r in routings]),
        num_experts=first.num_experts,
        num_null=first.num_null,
    )


def test_terms_ignore_padding() -> None:
    model = tiny_moe_lm()
    seqs = [[1, 10, 11, 12, 13, 14], [1, 20, 21], [1, 30, 31, 32]]
    # Reference: each sequence alone (no padding), routings of all real tokens concatenated per layer.
    per_layer: list[list[Routing]] = [[], []]
    for seq in seqs:
        model(torch.tensor([seq]))
        for layer, routing in enumerate(collect_routings(model)):
            per_layer[layer].append(routing)
    ref = [concat(rs) for rs in per_layer]
    ids = torch.zeros(3, 6, dtype=torch.long)
    mask = torch.zeros(3, 6, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    with RoutingTap(model) as tap:
        tap.start(mask)
        model(ids, attention_mask=mask)
        terms = tap.terms(aux_kind="null_aware")
    expected_aux = sum(routing_aux_loss(r, "null_aware") for r in ref)
    expected_z = sum(z_loss(r.logits) for r in ref)
    torch.testing.assert_close(terms.aux, expected_aux, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(terms.z, expected_z, atol=1e-4, rtol=1e-5)
    assert terms.tokens == [13, 13]
    assert terms.true_slots.dtype == torch.float64  # a device tensor: no host read per layer
    assert terms.true_slots.tolist() == [int(r.true_experts_per_token().sum()) for r in ref]
    load = mean_load(terms.true_slots.tolist(), terms.tokens)
    assert load == pytest.approx(sum(r.load() for r in ref) / 2)
    assert tap.recorder.layers["model.layers.0.mlp"].tokens == 13
    assert all(cb not in m.routing_callbacks for m in tap.sources.values() for cb in tap._callbacks.values())
    assert not any(m.routing_callbacks for m in tap.sources.values())


def test_terms_are_graph_attached_and_switch_differs() -> None:
    model = tiny_moe_lm()
    with RoutingTap(model) as tap:
        tap.start(None)
        model(torch.tensor([[1, 5, 6, 7, 8, 9]]))
        null_aware = tap.terms(aux_kind="null_aware", record=False)
        switch = tap.terms(aux_kind="switch", record=False)
        none = tap.terms(aux_kind="none", record=False)
    assert null_aware.aux.requires_grad
    assert float(none.aux) == 0.0
    assert not torch.allclose(null_aware.aux, switch.aux)
    assert tap.recorder.layers == {}


def test_dense_model_has_no_routing() -> None:
    from adamoe.hf.tiny import tiny_model

    tap = RoutingTap(tiny_model("llama"))
    assert not tap.has_routing and tap.recorder is None
    assert mean_load([], []) is None
