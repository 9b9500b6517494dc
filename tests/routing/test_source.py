"""RoutingSource: publishing once, found by type, and the compute dial living on the module that scores."""

import pytest
import torch

from adamoe.eval.dial import null_bias, null_routers
from adamoe.experts import SwiGLUExperts
from adamoe.layer import MoELayer
from adamoe.routing import HashRouter, TopKRouter
from adamoe.routing.source import RoutingSource, collect_routings, routing_sources


def layer(router) -> MoELayer:
    return MoELayer(router=router, experts=SwiGLUExperts(num_experts=4, hidden_size=16, intermediate_size=8))


def test_publish_sets_last_routing_and_calls_callbacks_in_order():
    moe = layer(TopKRouter(hidden_size=16, num_experts=4, top_k=2, num_null=2))
    seen = []
    moe.routing_callbacks += [lambda m, r: seen.append(("a", m, r)), lambda m, r: seen.append(("b", m, r))]
    moe(torch.randn(5, 16))
    assert [s[0] for s in seen] == ["a", "b"]
    assert all(s[1] is moe and s[2] is moe.last_routing for s in seen)
    assert collect_routings(torch.nn.Sequential(moe)) == [moe.last_routing]


def test_layer_dial_reads_and_writes_the_router():
    router = TopKRouter(hidden_size=16, num_experts=4, top_k=2, num_null=2)
    moe = layer(router)
    moe.null_bias = 2.5
    assert router.null_bias == 2.5 and moe.null_bias == 2.5 and moe.num_null == 2
    hashed = layer(HashRouter(num_experts=4, vocab_size=10))
    assert hashed.null_bias == 0.0
    with pytest.raises(ValueError, match="null_bias"):
        hashed.null_bias = 1.0


def test_a_source_without_a_router_keeps_its_own_dial():
    class Scorer(RoutingSource):
        num_null = 3

    s = Scorer()
    s.null_bias = 1
    assert s.null_bias == 1.0 and isinstance(s.null_bias, float)


def test_dial_finds_sources_with_nulls_and_restores_them():
    model = torch.nn.Sequential(
        layer(TopKRouter(hidden_size=16, num_experts=4, top_k=2, num_null=2)),
        layer(TopKRouter(hidden_size=16, num_experts=4, top_k=2)),
    )
    assert [n for n, _ in routing_sources(model)] == ["0", "1"]
    assert null_routers(model) == [model[0]]
    with null_bias(model, 4.0):
        assert model[0].router.null_bias == 4.0
    assert model[0].router.null_bias == 0.0
    with pytest.raises(ValueError, match="num_null"):
        null_routers(model[1:])
