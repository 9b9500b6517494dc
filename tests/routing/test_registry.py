"""The router registry: kinds map to classes and constructor fields; RouterConfig validates from it."""

from __future__ import annotations

import pytest
import torch

from adamoe.config import MoEConfig, RouterConfig
from adamoe.routing import ROUTER_KINDS, ROUTERS, TopKRouter, build_router, register_router
from adamoe.routing.registry import router_kinds


def test_builtin_kinds_in_order():
    assert ROUTER_KINDS == ("topk", "topp", "expert_choice", "hash", "stochastic", "sigmoid_bias")
    assert router_kinds()[: len(ROUTER_KINDS)] == ROUTER_KINDS


def test_entry_picks_exactly_its_fields():
    cfg = RouterConfig(kind="hash", num_experts=4, top_k=1, vocab_size=30, seed=5)
    assert ROUTERS["hash"].kwargs(cfg, hidden_size=16) == {"num_experts": 4, "vocab_size": 30, "seed": 5}
    topk = ROUTERS["topk"].kwargs(RouterConfig(num_null=2, top_k=3), hidden_size=16)
    assert topk == {
        "hidden_size": 16,
        "num_experts": 8,
        "top_k": 3,
        "num_null": 2,
        "null_type": "zero",
        "normalize": 2,
        "jitter": 0.0,
    }
    assert [k for k, e in ROUTERS.items() if not e.takes_nulls] == ["expert_choice", "hash", "stochastic"]


def test_build_router_and_unknown_kind():
    router = build_router(RouterConfig(num_experts=4, top_k=2), hidden_size=8)
    assert type(router) is TopKRouter and router.weight.shape == (4, 8)
    bad = RouterConfig(kind="nope")
    with pytest.raises(ValueError) as err:
        build_router(bad, hidden_size=8)
    assert str(err.value) == f"router.kind: expected one of {router_kinds()}, got 'nope'"


def test_a_registered_kind_is_validated_and_built_by_the_config():
    @register_router("test_top1", args=("num_experts",), top_k=1)
    class Top1(TopKRouter):
        def __init__(self, *, hidden_size: int, num_experts: int) -> None:
            super().__init__(hidden_size=hidden_size, num_experts=num_experts, top_k=1)

    try:
        layer = MoEConfig(hidden_size=8, router=RouterConfig(kind="test_top1", top_k=1)).build()
        assert type(layer.router) is Top1 and layer(torch.randn(3, 8)).shape == (3, 8)
        with pytest.raises(ValueError) as err:
            RouterConfig(kind="test_top1", top_k=2).validate()
        assert str(err.value) == "router.top_k: test_top1 routing uses top_k=1, got 2"
        with pytest.raises(ValueError) as err:
            RouterConfig(kind="test_top1", top_k=1, num_null=2).validate()
        assert str(err.value) == "router.num_null: test_top1 routing does not take null experts, got 2"
        with pytest.raises(ValueError, match=r"^router kind 'test_top1' is already registered \(Top1\)$"):
            register_router("test_top1", args=())(Top1)
    finally:
        del ROUTERS["test_top1"]


def test_required_field_message():
    with pytest.raises(ValueError) as err:
        RouterConfig(kind="hash", top_k=1).validate()
    assert str(err.value) == "router.vocab_size: hash routing needs it set, got None"
