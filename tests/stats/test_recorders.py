"""The per-item recorder and per-row packing against the model-level recorder and naive per-token sums."""

import numpy as np
import pytest
import torch
from torch import nn

from adamoe.routing.source import RoutingSource, routing_sources
from adamoe.stats import (
    ItemRoutingRecorder,
    LayerStats,
    RoutingRecorder,
    iter_routing_sources,
    pack_rows,
    summarise_packs,
)
from tests.stats.helpers import moe_stack


@torch.no_grad()
def test_pack_rows_equals_layer_stats_of_each_rows_real_tokens():
    layer = moe_stack(1, top_k=3)[0]
    x = torch.randn(3, 5, 16)
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    layer(x)
    routing = layer.last_routing
    packed = pack_rows(routing, mask)
    for row in range(3):
        ref = LayerStats(4, 4)
        keep = torch.zeros(15, dtype=torch.bool)
        keep[row * 5 : row * 5 + 5] = mask[row]
        ref.update(routing.select(keep))
        torch.testing.assert_close(packed[row], ref.as_tensor())
    assert packed[2].abs().sum() == 0 and packed[1][0] == 3  # tokens column counts the real tokens
    with pytest.raises(ValueError, match="routing"):
        pack_rows(routing, mask[:, :4])


@torch.no_grad()
def test_item_recorder_sums_to_the_recorder_over_the_same_forwards():
    model = moe_stack(2, top_k=3)
    ids = ["a", "b", "c"]
    mask = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)
    with RoutingRecorder(model, baseline_k=2) as ref, ItemRoutingRecorder(model) as items:
        for _ in range(2):
            ref.token_mask = mask.reshape(-1)
            items.set_batch(ids, mask)
            model(torch.randn(3, 4, 16))
    assert set(items.items) == set(ids) and items.unattributed_tokens == 0
    got = summarise_packs(items.items.values(), items.shapes, baseline_k=2, order=list(items.sources))
    want = ref.summary()
    assert list(got["layers"]) == list(want["layers"]) == ["0", "1"]
    assert got["tokens"] == want["tokens"] == 18
    for name, w in want["layers"].items():
        assert set(got["layers"][name]) == set(w)
        for key, value in w.items():
            assert got["layers"][name][key] == pytest.approx(value), key
    assert got["load"] == pytest.approx(want["load"]) and got["flops_pct"] == pytest.approx(want["flops_pct"])
    # item "c" alone: its two real tokens in each of the two forwards
    only_c = summarise_packs([items.items["c"]], items.shapes)
    assert only_c["layers"]["0"]["tokens"] == 4
    assert summarise_packs([], items.shapes) is None
    with pytest.raises(ValueError, match="shapes"):
        summarise_packs([{"x": np.zeros(3)}], items.shapes)


def test_sources_are_found_by_type_not_by_attributes():
    model = moe_stack(2, top_k=3)
    impostor = nn.Linear(2, 2)
    impostor.routing_callbacks, impostor.last_routing = [], None
    model.append(impostor)
    assert [name for name, _ in routing_sources(model)] == ["0", "1"]
    assert all(isinstance(m, RoutingSource) for _, m in iter_routing_sources(model))
    with pytest.raises(ValueError, match="model"):
        ItemRoutingRecorder(nn.Linear(2, 2))
