"""MoELayer end to end vs naive per-token computation; shared experts; causality; load under uniform routing;
the fused decode path against router + dispatch, and its fallbacks."""

import pytest
import torch
from torch.nn import functional as F

from adamoe.config import ExpertsConfig, MoEConfig, RouterConfig
from adamoe.experts import LoRASwiGLUExperts, SwiGLUExperts, kernels
from adamoe.layer import MoELayer, SharedExpert
from adamoe.routing import (
    ExpertChoiceRouter,
    HashRouter,
    SigmoidBiasRouter,
    StochasticRouter,
    TopKRouter,
    TopPRouter,
)
from adamoe.stats import RoutingRecorder

H, INTER, E = 16, 8, 4


def naive_swiglu(x, gate_up_e, down_e):
    inter = down_e.shape[1]
    g, u = gate_up_e[:inter] @ x, gate_up_e[inter:] @ x
    return down_e @ (g * torch.sigmoid(g) * u)


def naive_adamoe_token(x, router_weight, experts, *, k, num_experts):
    """One token through top-k softmax routing with zero nulls and option-2 weights."""
    logits = router_weight @ x
    p = torch.exp(logits - logits.max())
    p = p / p.sum()
    chosen = sorted(range(len(p)), key=lambda i: -float(p[i]))[:k]
    true = [e for e in chosen if e < num_experts]
    if not true:
        return torch.zeros_like(x), 0
    denom = sum(float(p[e]) for e in true)
    out = sum(
        float(p[e]) / denom * naive_swiglu(x, experts.gate_up_proj[e], experts.down_proj[e]) for e in true
    )
    return out, len(true)


def _layer(**router_kw) -> MoELayer:
    return MoELayer(
        router=TopKRouter(hidden_size=H, num_experts=E, **router_kw).eval(),
        experts=SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER),
    )


@torch.no_grad()
def test_layer_matches_naive_per_token_and_all_null_tokens_output_zero():
    layer = _layer(top_k=2, num_null=4)
    x = torch.randn(2, 16, H)  # (batch, seq, hidden)
    out = layer(x)
    assert out.shape == x.shape
    flat_x, flat_out = x.reshape(-1, H), out.reshape(-1, H)
    n_bypass = 0
    for t in range(32):
        want, n_true = naive_adamoe_token(flat_x[t], layer.router.weight, layer.experts, k=2, num_experts=E)
        torch.testing.assert_close(flat_out[t], want, atol=1e-5, rtol=1e-5)
        if n_true == 0:
            n_bypass += 1
            assert bool((flat_out[t] == 0).all())  # exactly zero, not just small
    assert n_bypass > 0, "test needs tokens that pick only nulls"
    assert layer.last_routing is not None and layer.last_routing.num_tokens == 32


def test_callbacks_receive_layer_and_routing():
    layer = _layer(top_k=2, num_null=2)
    seen = []
    layer.routing_callbacks.append(lambda mod, r: seen.append((mod, r)))
    layer(torch.randn(5, H))
    assert len(seen) == 1 and seen[0][0] is layer and seen[0][1] is layer.last_routing


@pytest.mark.parametrize("gated", [False, True])
@torch.no_grad()
def test_shared_expert_adds_a_dense_swiglu(gated):
    routed = _layer(top_k=2)
    shared = SharedExpert(hidden_size=H, intermediate_size=12, gated=gated)
    layer = MoELayer(router=routed.router, experts=routed.experts, shared_expert=shared)
    x = torch.randn(10, H)
    diff = layer(x) - routed(x)
    wg, wu = shared.gate_up_proj.weight[:12], shared.gate_up_proj.weight[12:]
    for t in range(10):
        g, u = wg @ x[t], wu @ x[t]
        dense = shared.down_proj.weight @ (g * torch.sigmoid(g) * u)
        if gated:
            dense = torch.sigmoid(shared.gate.weight[0] @ x[t]) * dense
        torch.testing.assert_close(diff[t], dense, atol=1e-5, rtol=1e-5)


def test_expert_choice_refused_for_generation_but_topk_allowed():
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER)
    with pytest.raises(ValueError, match="router"):
        MoELayer(router=ExpertChoiceRouter(hidden_size=H, num_experts=E), experts=experts, generation=True)
    MoELayer(router=ExpertChoiceRouter(hidden_size=H, num_experts=E), experts=experts)  # training is fine
    MoELayer(router=TopKRouter(hidden_size=H, num_experts=E, top_k=2), experts=experts, generation=True)


@torch.no_grad()
def test_hash_layer_needs_token_ids_and_routes_by_them():
    layer = MoELayer(
        router=HashRouter(num_experts=E, vocab_size=20, seed=1),
        experts=SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER),
    )
    x = torch.randn(2, 5, H)
    with pytest.raises(ValueError, match="token_ids"):
        layer(x)
    ids = torch.randint(0, 20, (2, 5))
    out = layer(x, token_ids=ids).reshape(-1, H)
    for t, (xt, i) in enumerate(zip(x.reshape(-1, H), ids.reshape(-1))):
        e = int(layer.router.table[i])
        torch.testing.assert_close(
            out[t],
            naive_swiglu(xt, layer.experts.gate_up_proj[e], layer.experts.down_proj[e]),
            atol=1e-5,
            rtol=1e-5,
        )


@torch.no_grad()
def test_stochastic_layer_eval_average_is_the_mean_of_all_experts():
    layer = MoELayer(
        router=StochasticRouter(num_experts=E, eval_mode="average").eval(),
        experts=SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER),
    )
    x = torch.randn(6, H)
    out = layer(x)
    for t in range(6):
        want = (
            sum(
                naive_swiglu(x[t], layer.experts.gate_up_proj[e], layer.experts.down_proj[e])
                for e in range(E)
            )
            / E
        )
        torch.testing.assert_close(out[t], want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(x), out)  # deterministic at eval


def test_gradients_reach_the_router_from_the_task_loss_alone():
    """Tiny LM: embed -> MoE -> head -> cross-entropy. No aux loss: the router learns only through
    the combination weights."""
    torch.manual_seed(0)
    vocab = 50
    embed, head = torch.nn.Embedding(vocab, H), torch.nn.Linear(H, vocab)
    layer = _layer(top_k=3, num_null=4)
    layer.router.train()
    ids = torch.randint(0, vocab, (4, 12))
    logits = head(layer(embed(ids)))
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
    loss.backward()
    grad = layer.router.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    # only the rows of true experts get gradient with option 2 (null logits cancel out of the
    # renormalised weights), so the signal is really the weights of the chosen true experts
    assert float(grad[:E].abs().sum()) > 0
    torch.testing.assert_close(grad[E:], torch.zeros_like(grad[E:]), atol=1e-7, rtol=0)


def test_uniform_random_logits_give_load_k_e_over_e_plus_m():
    """i.i.d. N(0, 1) logits: with an orthogonal router weight and N(0, INTER) hidden states, the logits
    W x are exactly i.i.d. standard normal, so the k picks are uniform over the E + m experts and the
    expected load is k * E / (E + m) = 3 * 8 / 16 = 1.5."""
    cfg = MoEConfig(
        hidden_size=16,
        router=RouterConfig(num_experts=8, num_null=8, top_k=3),
        experts=ExpertsConfig(intermediate_size=8),
    )
    layer = cfg.build()
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(16, 16))
        layer.router.weight.copy_(q)
    x = torch.randn(20000, 16)
    with RoutingRecorder(layer, baseline_k=3) as rec, torch.no_grad():
        layer(x)
    load = rec.summary()["load"]
    assert abs(load - 1.5) / 1.5 < 0.02, load
    assert rec.summary()["flops_pct"] == pytest.approx(100 * load / 3)
    # sanity of the reference: without nulls the same router uses exactly k experts per token
    no_null = MoEConfig(
        hidden_size=16,
        router=RouterConfig(num_experts=8, top_k=3),
        experts=ExpertsConfig(intermediate_size=8),
    ).build()
    with torch.no_grad():
        no_null(x[:100])
    assert no_null.last_routing.load() == 3.0


# --- decode: routing and experts in one kernel call (MoELayer._fused_decode) ----------------------------

FUSED_CONFIGS = [  # top-k; AdaMoE zero and identity nulls, options 1 and 2; the compute dial on
    {"top_k": 2},
    {"top_k": 3, "num_null": 4, "null_type": "zero", "normalize": 2},
    {"top_k": 3, "num_null": 4, "null_type": "zero", "normalize": 1},
    {"top_k": 3, "num_null": 4, "null_type": "identity", "normalize": 2},
    {"top_k": 3, "num_null": 4, "null_type": "identity", "normalize": 1},
    {"top_k": 3, "num_null": 4, "null_bias": 0.7},
]


def _forbid_router(monkeypatch, layer):
    def fail(*args, **kwargs):
        raise AssertionError("the router ran: the fused decode path was not taken")

    monkeypatch.setattr(layer.router, "forward", fail)


@pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain to build the decode kernel")
@pytest.mark.parametrize("tokens", [1, 8])
@pytest.mark.parametrize("config", FUSED_CONFIGS)
@torch.no_grad()
def test_fused_decode_equals_router_plus_dispatch_and_records_the_same_loads(config, tokens, monkeypatch):
    config = dict(config)
    null_bias = config.pop("null_bias", 0.0)
    torch.manual_seed(tokens)
    layer = _layer(**config)
    layer.router.null_bias = null_bias
    x = torch.randn(tokens, H)
    layer.fused_decode = False
    with RoutingRecorder(layer) as rec_ref:
        want = layer(x)
    ref = layer.last_routing
    layer.fused_decode = True
    with monkeypatch.context() as patch, RoutingRecorder(layer) as rec:
        _forbid_router(patch, layer)
        out = layer(x)
    got = layer.last_routing
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(got.indices, ref.indices)
    for name in ("weights", "probs", "logits"):
        torch.testing.assert_close(getattr(got, name), getattr(ref, name), atol=1e-6, rtol=1e-5)
    assert (got.num_experts, got.num_null, got.null_type) == (ref.num_experts, ref.num_null, ref.null_type)
    assert layer.experts.rows_processed == int(ref.true_mask().sum())
    summary, summary_ref = rec.summary(), rec_ref.summary()
    assert summary["load"] == summary_ref["load"]
    for key, layer_ref in summary_ref["layers"].items():
        assert summary["layers"][key]["load"] == layer_ref["load"]


def _spy_fused(monkeypatch) -> list[int]:
    """Count the calls the fused routing kernel served (None: it declined, and the router path runs)."""
    served = []
    real = kernels.moe_decode_routed

    def spy(*args, **kwargs):
        done = real(*args, **kwargs)
        if done is not None:
            served.append(1)
        return done

    monkeypatch.setattr(kernels, "moe_decode_routed", spy)
    return served


class _Top1(TopKRouter):
    """A subclass may change the rule: it keeps the router path unless it overrides ``decode_rule``."""


def _fallback_layers() -> dict[str, MoELayer]:
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER)
    routers = {
        "expert_choice": ExpertChoiceRouter(hidden_size=H, num_experts=E),
        "sigmoid_bias": SigmoidBiasRouter(hidden_size=H, num_experts=E, top_k=2),
        "top_p": TopPRouter(hidden_size=H, num_experts=E, top_p=0.5),
        "subclass": _Top1(hidden_size=H, num_experts=E, top_k=1),
        "jitter_in_training": TopKRouter(hidden_size=H, num_experts=E, top_k=2, jitter=0.1).train(),
        "switched_off": TopKRouter(hidden_size=H, num_experts=E, top_k=2),
    }
    layers = {name: MoELayer(router=router.eval(), experts=experts) for name, router in routers.items()}
    layers["jitter_in_training"].router.train()
    layers["switched_off"].fused_decode = False
    return layers


@torch.no_grad()
def test_unsupported_routers_fall_back_to_router_plus_dispatch(monkeypatch):
    calls = _spy_fused(monkeypatch)
    x = torch.randn(3, H)
    for name, layer in _fallback_layers().items():
        ran = []
        real = layer.router.forward
        monkeypatch.setattr(
            layer.router, "forward", lambda *a, real=real, ran=ran, **kw: (ran.append(1), real(*a, **kw))[1]
        )
        out = layer(x)
        assert ran == [1] and calls == [], name
        routing = layer.last_routing
        want = torch.zeros_like(x)
        for t in range(3):
            for e, w in zip(routing.indices[t].tolist(), routing.weights[t].tolist()):
                if 0 <= e < E:
                    want[t] += w * naive_swiglu(
                        x[t], layer.experts.gate_up_proj[e], layer.experts.down_proj[e]
                    )
        torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    hashed = MoELayer(router=HashRouter(num_experts=E, vocab_size=20), experts=_layer(top_k=1).experts)
    hashed(x, token_ids=torch.tensor([1, 2, 3]))
    assert calls == []


def test_fused_decode_is_not_taken_with_autograd_or_lora_experts(monkeypatch):
    calls = _spy_fused(monkeypatch)
    layer = _layer(top_k=2, num_null=2)
    layer(torch.randn(2, H))  # grad enabled and the router weight requires it
    lora = LoRASwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER, rank=2, alpha=4.0)
    with torch.no_grad():
        MoELayer(router=layer.router, experts=lora)(torch.randn(2, H))
    assert calls == [] and layer.last_routing.weights.requires_grad
    if kernels.available():  # the spy does see the fused path when it is taken
        with torch.no_grad():
            layer(torch.randn(2, H))
        assert calls == [1]


@pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain to build the decode kernel")
@torch.no_grad()
def test_router_hooks_keep_the_router_path_so_they_run(monkeypatch):
    """The fused call never calls ``self.router``: with a hook (or pre-hook) on it the layer must route
    through the router, so the hook sees this call's hidden states and logits."""
    calls = _spy_fused(monkeypatch)
    layer = _layer(top_k=3, num_null=4)
    x = torch.randn(2, H)
    layer(x)
    assert calls == [1]  # no hook: the fused path is taken
    seen: list[str] = []
    pre = layer.router.register_forward_pre_hook(lambda m, args: seen.append("pre"))
    post = layer.router.register_forward_hook(lambda m, args, out: seen.append("post"))
    out = layer(x)
    assert seen == ["pre", "post"] and calls == [1]
    post.remove()
    layer(x)
    assert seen == ["pre", "post", "pre"] and calls == [1]
    pre.remove()
    layer.fused_decode = False
    torch.testing.assert_close(out, layer(x))  # the same call as the unfused layer's
    layer.fused_decode = True
    layer(x)
    assert calls == [1, 1]  # hooks gone: fused again


def test_a_layer_pickled_before_fused_decode_existed_loads_with_it_on():
    import pickle

    layer = _layer(top_k=2)
    layer.__dict__.pop("fused_decode", None)  # the state of a layer saved before the attribute existed
    old = pickle.loads(pickle.dumps(layer))
    assert "fused_decode" not in old.__dict__ and old.fused_decode is True
    x = torch.randn(3, H)
    with torch.no_grad():
        torch.testing.assert_close(old(x), layer(x))
