"""Dispatch under ``torch.compile`` (issue 20): one graph per MoE layer through the opaque op
``adamoe::moe_routed_swiglu``, the same outputs as eager and as the per-token loop of
``tests/test_dispatch.py`` (identity nulls and all-null tokens included), and, when gradients are needed,
the counted path with the eager gradients.

Compiles use ``aot_eager`` (fake tensors, functionalisation: what inductor plans with) except one inductor
run; shapes are tiny so each compile takes seconds.
"""

from __future__ import annotations

import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from adamoe import dispatch as dsp
from adamoe.experts import SwiGLUExperts
from adamoe.layer import MoELayer
from adamoe.routing.topk import TopKRouter
from tests.test_dispatch import INTER, E, naive_moe, naive_swiglu, picks_of

H = 32
ROUTERS = {  # name -> TopKRouter settings
    "topk": dict(top_k=2),
    "adamoe_identity": dict(top_k=2, num_null=4, null_type="identity"),
    "adamoe_zero": dict(top_k=3, num_null=4, null_type="zero"),
}


def _layer(name: str, *, null_bias: float = 0.0) -> MoELayer:
    router = TopKRouter(hidden_size=H, num_experts=E, **ROUTERS[name])
    router.null_bias = null_bias
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER)
    return MoELayer(router=router, experts=experts).eval()


def _by_loop(layer: MoELayer, x: torch.Tensor) -> torch.Tensor:
    """The per-token, per-slot loop over the picks the eager router made for ``x``."""
    routing = layer.router(x)
    ex = layer.experts
    return naive_moe(
        x,
        picks_of(routing),
        lambda v, e: naive_swiglu(v, ex.gate_up_proj[e], ex.down_proj[e]),
        num_experts=E,
        null_type=layer.router.null_type,
    )


def _op_calls(ops: list) -> int:
    return sum(op is torch.ops.adamoe.moe_routed_swiglu.default for op in ops)


@pytest.mark.parametrize("name", list(ROUTERS))
@pytest.mark.parametrize("tokens", [16, 1])
@torch.no_grad()
def test_a_compiled_layer_is_one_graph_calling_the_routed_op(name, tokens):
    """Before the op: 12 breaks at T=16 (bincount/tolist, the skinny kernel) and 3 at T=1 (the decode
    kernel's availability check and its C++ call)."""
    explained = torch._dynamo.explain(_layer(name))(torch.randn(tokens, H))
    assert explained.graph_break_count == 0, [str(b.reason) for b in explained.break_reasons]
    assert explained.graph_count == 1
    assert _op_calls(explained.ops_per_graph[0]) == 1


@pytest.mark.parametrize("name", list(ROUTERS))
@pytest.mark.parametrize("tokens", [16, 1])
@torch.no_grad()
def test_compiled_layer_computes_what_eager_and_the_per_token_loop_compute(name, tokens):
    layer = _layer(name)
    x = torch.randn(tokens, H)
    torch._dynamo.reset()
    got = torch.compile(layer, backend="aot_eager", fullgraph=True, dynamic=False)(x)
    torch.testing.assert_close(got, layer(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, _by_loop(layer, x), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_identity_nulls_and_all_null_tokens_compile_to_the_eager_output():
    """Some tokens pick only nulls (identity: output = their weight sum * x, no expert row), some do not;
    with inductor, the compiler the model bench uses."""
    layer = _layer("adamoe_identity", null_bias=1.0)
    x = torch.randn(16, H)
    routing = layer.router(x)
    all_null = (routing.indices >= E).all(dim=1)
    assert 0 < int(all_null.sum()) < 16, "the test needs all-null tokens and routed ones"
    torch._dynamo.reset()
    got = torch.compile(layer, fullgraph=True, dynamic=False)(x)
    torch.testing.assert_close(got, layer(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, _by_loop(layer, x), atol=1e-5, rtol=1e-5)
    by_hand = routing.weights[all_null].sum(dim=1, keepdim=True) * x[all_null]
    torch.testing.assert_close(got[all_null], by_hand, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("null_type", ["identity", "zero"])
@torch.no_grad()
def test_a_single_all_null_token_runs_no_expert_row(null_type):
    """T=1 with every pick on a null: the op runs on zero rows; identity returns the weight sum * x."""
    layer = _layer("adamoe_identity" if null_type == "identity" else "adamoe_zero", null_bias=50.0)
    x = torch.randn(1, H)
    routing = layer.router(x)
    assert bool((routing.indices >= E).all())
    torch._dynamo.reset()
    got = torch.compile(layer, backend="aot_eager", fullgraph=True, dynamic=False)(x)
    want = routing.weights.sum() * x if null_type == "identity" else torch.zeros_like(x)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


def test_with_gradients_the_compiled_layer_keeps_the_counted_path_and_eager_gradients():
    """The op has no backward: with gradients on, dispatch leaves it out (the graph breaks again) and the
    compiled layer's gradients are eager's."""
    layer = _layer("adamoe_identity").train()
    x = torch.randn(16, H, requires_grad=True)
    params = [x, layer.router.weight, layer.experts.gate_up_proj, layer.experts.down_proj]
    explained = torch._dynamo.explain(layer)(x)
    assert explained.graph_break_count > 0 and not any(_op_calls(ops) for ops in explained.ops_per_graph)
    torch._dynamo.reset()
    compiled = torch.compile(layer, backend="aot_eager", dynamic=False)
    got = torch.autograd.grad(compiled(x).square().sum(), params)
    want = torch.autograd.grad(layer(x).square().sum(), params)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_the_op_is_the_counted_path_and_its_fake_matches_its_output():
    """Eager calls of the op equal ``routed_counted`` over the experts' own ``forward_grouped``; opcheck
    tests the schema and that the fake output (shape, dtype, strides) is the real one's."""
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER).requires_grad_(False)
    routing = TopKRouter(hidden_size=H, num_experts=E, top_k=2, num_null=2)(torch.randn(8, H)).detach()
    hidden = torch.randn(8, H)
    args = (hidden, routing.indices, routing.weights, experts.gate_up_proj, experts.down_proj, E, "auto")
    want = dsp.routed_counted(hidden, routing.indices, routing.weights, E, experts.forward_grouped)
    torch.testing.assert_close(dsp.moe_routed_swiglu(*args), want)
    torch.library.opcheck(dsp.moe_routed_swiglu, args)


def test_experts_without_plain_fused_weights_keep_the_counted_path():
    """Explicit ``grouped``/``loop`` backends expose no fused weights: compiled_routed declines."""
    routing = TopKRouter(hidden_size=H, num_experts=E, top_k=2)(torch.randn(4, H)).detach()
    for backend in ("grouped", "loop"):
        experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER, backend=backend)
        with torch.no_grad():
            assert dsp.compiled_routed(torch.randn(4, H), routing, experts) is None


class _AtenCounter(TorchDispatchMode):
    """Counts the aten calls made at the Python level (each op the code launches, not its internals)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(("kernel", "bound"), [("grouped", 2 * E + 30), ("torch_grouped_mm", 26)])
@torch.inference_mode()
def test_the_op_body_launches_a_bounded_number_of_aten_ops(kernel, bound):
    """Issue 20: the op's eager body (:func:`routed_swiglu`) at a tiny layer, zero nulls and empty slots
    among the picks, launches at most ``bound`` aten ops: one GEMM per expert and projection on the grouped
    kernel (nothing else per expert: the counted path's body made 69 calls here, 109 at E=8), two
    grouped GEMMs on ``torch._grouped_mm`` (34 calls before); and it computes the per-token loop's output."""
    layer = _layer("adamoe_zero")
    x = torch.randn(64, H)
    routing = layer.router(x)
    routing.indices[::5, 0] = -1  # empty slots too (weights stay: the op must drop them, not weight them)
    assert bool((routing.indices >= E).any())
    args = (x, routing.indices, routing.weights, layer.experts.gate_up_proj, layer.experts.down_proj, E)
    with _AtenCounter() as counter:
        got = dsp.routed_swiglu(*args, kernel)
    assert sum(counter.ops.values()) <= bound, counter.ops
    gemms = counter.ops["mm"] if kernel == "grouped" else counter.ops["_grouped_mm"]
    assert gemms == (2 * E if kernel == "grouped" else 2), counter.ops
    ex = layer.experts
    want = naive_moe(
        x,
        picks_of(routing),
        lambda v, e: naive_swiglu(v, ex.gate_up_proj[e], ex.down_proj[e]),
        num_experts=E,
        null_type="zero",
    )
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
