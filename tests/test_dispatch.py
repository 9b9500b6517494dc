"""Dispatch vs a per-token loop, forward and backward, for every experts backend and LoRA experts.

The references here are written from scratch: a per-token top-k router (its own softmax, sort and
normalisation) feeding a per-token, per-slot SwiGLU loop. Gradients are compared wrt the input, the
expert weights and the router weight (fp32, atol 1e-5).
"""

import pytest
import torch

from adamoe.dispatch import dispatch, plan
from adamoe.experts import BACKENDS, LoRASwiGLUExperts, SwiGLUExperts
from adamoe.routing.base import Routing
from adamoe.routing.expert_choice import ExpertChoiceRouter
from adamoe.routing.topk import TopKRouter
from adamoe.routing.topp import TopPRouter

H, INTER, E = 16, 8, 4


# ------------------------------------------------------------------ independent references


def naive_topk_picks(hidden, router_weight, *, k, num_experts, normalize, null_type):
    """Per token: logits, softmax, the k largest, weights as configured. Differentiable in the
    router weight and the hidden states; returns a list of [(expert, weight tensor), ...]."""
    picks = []
    for x in hidden:
        logits = torch.stack([router_weight[i] @ x for i in range(router_weight.shape[0])])
        ex = torch.exp(logits - logits.max())
        p = ex / ex.sum()
        order = sorted(range(len(p)), key=lambda i: -float(p[i].detach()))[:k]
        contributes = [i < num_experts or null_type == "identity" for i in order]
        if normalize == 0:
            denom = torch.ones(())
        elif normalize == 2:
            denom = sum((p[i] for i, c in zip(order, contributes) if c), torch.zeros(()))
        else:
            denom = sum((p[i] for i in order), torch.zeros(()))
        picks.append(
            [
                (i, p[i] / denom if c and float(denom.detach()) > 0 else p[i] * 0)
                for i, c in zip(order, contributes)
            ]
        )
    return picks


def naive_swiglu(x, gate_up_e, down_e):
    g, u = gate_up_e[:INTER] @ x, gate_up_e[INTER:] @ x
    return down_e @ (g * torch.sigmoid(g) * u)


def naive_moe(hidden, picks, expert_fn, *, num_experts, null_type):
    """Token by token, slot by slot."""
    rows = []
    for x, token_picks in zip(hidden, picks):
        acc = torch.zeros_like(x)
        for e, w in token_picks:
            if 0 <= e < num_experts:
                acc = acc + w * expert_fn(x, e)
            elif e >= num_experts and null_type == "identity":
                acc = acc + w * x
        rows.append(acc)
    return torch.stack(rows)


def picks_of(routing):
    """Library routing -> per-token pick lists (weights stay attached to the graph)."""
    return [
        [(int(e), routing.weights[t, j]) for j, e in enumerate(routing.indices[t]) if int(e) >= 0]
        for t in range(routing.num_tokens)
    ]


def lora_expert_fn(ex):
    s = ex.scaling

    def fn(x, e):
        gu = ex.gate_up_proj[e] @ x + s * (ex.lora_B_gate_up[e] @ (ex.lora_A_gate_up[e] @ x))
        g, u = gu[:INTER], gu[INTER:]
        h = g * torch.sigmoid(g) * u
        return ex.down_proj[e] @ h + s * (ex.lora_B_down[e] @ (ex.lora_A_down[e] @ h))

    return fn


# ------------------------------------------------------------------ forward and backward

ROUTINGS = {
    # name: (num_null, k, null_type, normalize)
    "mixtral_m0_k2": (0, 2, "zero", 2),
    "adamoe_zero_opt2": (4, 3, "zero", 2),
    "adamoe_zero_opt1": (4, 3, "zero", 1),
    "adamoe_identity": (4, 3, "identity", 2),
    "raw_probs_opt0": (4, 2, "zero", 0),
}


def _grads(loss, tensors):
    return torch.autograd.grad(loss, tensors, retain_graph=True)


def assert_matches_loop(name: str, experts: SwiGLUExperts, *, tokens: int = 32):
    """``dispatch`` under routing ``name`` vs the per-token loop: output and the gradients wrt the input,
    both expert weights and the router weight. Returns the routing and the gradients."""
    num_null, k, null_type, normalize = ROUTINGS[name]
    router = TopKRouter(
        hidden_size=H, num_experts=E, top_k=k, num_null=num_null, null_type=null_type, normalize=normalize
    ).eval()
    hidden = torch.randn(tokens, H, requires_grad=True)
    probe = torch.randn(tokens, H)

    routing = router(hidden)
    out = dispatch(hidden, routing, experts)
    params = [hidden, experts.gate_up_proj, experts.down_proj, router.weight]
    got = _grads((out * probe).sum(), params)

    picks = naive_topk_picks(
        hidden, router.weight, k=k, num_experts=E, normalize=normalize, null_type=null_type
    )
    want_out = naive_moe(
        hidden,
        picks,
        lambda x, e: naive_swiglu(x, experts.gate_up_proj[e], experts.down_proj[e]),
        num_experts=E,
        null_type=null_type,
    )
    want = _grads((want_out * probe).sum(), params)

    torch.testing.assert_close(out, want_out, atol=1e-5, rtol=1e-5)
    for pname, g, w in zip(("hidden", "gate_up_proj", "down_proj", "router.weight"), got, want):
        assert torch.isfinite(g).all(), pname
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5, msg=pname)
    return routing, got


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(ROUTINGS))
def test_dispatch_matches_per_token_loop_forward_and_backward(backend, name):
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER, backend=backend)
    routing, got = assert_matches_loop(name, experts)
    if name != "raw_probs_opt0":
        # gradients reach the router through the combination weights
        assert got[3].abs().sum() > 0
    # zero-null slots never reach the GEMMs: rows processed == true slots
    assert experts.rows_processed == int(((routing.indices >= 0) & (routing.indices < E)).sum())


@pytest.mark.parametrize("backend", BACKENDS)
def test_lora_experts_dispatch_forward_and_backward(backend):
    router = TopKRouter(hidden_size=H, num_experts=E, top_k=3, num_null=4).eval()
    experts = LoRASwiGLUExperts(
        num_experts=E, hidden_size=H, intermediate_size=INTER, rank=2, alpha=4.0, backend=backend
    )
    with torch.no_grad():
        experts.lora_B_gate_up.normal_(std=0.3)
        experts.lora_B_down.normal_(std=0.3)
    hidden = torch.randn(32, H, requires_grad=True)
    probe = torch.randn(32, H)
    params = [
        hidden,
        router.weight,
        experts.lora_A_gate_up,
        experts.lora_B_gate_up,
        experts.lora_A_down,
        experts.lora_B_down,
    ]
    routing = router(hidden)
    out = dispatch(hidden, routing, experts)
    got = _grads((out * probe).sum(), params)
    picks = naive_topk_picks(hidden, router.weight, k=3, num_experts=E, normalize=2, null_type="zero")
    want_out = naive_moe(hidden, picks, lora_expert_fn(experts), num_experts=E, null_type="zero")
    want = _grads((want_out * probe).sum(), params)
    torch.testing.assert_close(out, want_out, atol=1e-5, rtol=1e-5)
    for i, (g, w) in enumerate(zip(got, want)):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5, msg=f"param {i}")
    assert experts.rows_processed == int((routing.indices < E).sum())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("router_kind", ["topp_nulls", "expert_choice"])
def test_dispatch_with_empty_slots_matches_loop(backend, router_kind):
    """Variable-k routers pad with -1 slots; those must cost nothing and contribute nothing."""
    if router_kind == "topp_nulls":
        router = TopPRouter(hidden_size=H, num_experts=E, num_null=4, top_p=0.6).eval()
    else:
        router = ExpertChoiceRouter(hidden_size=H, num_experts=E, top_k=2).eval()
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER, backend=backend)
    hidden = torch.randn(32, H, requires_grad=True)
    probe = torch.randn(32, H)
    routing = router(2.0 * hidden)
    assert bool((routing.indices < 0).any()), "test needs padded slots"
    params = [hidden, experts.gate_up_proj, experts.down_proj, router.weight]
    out = dispatch(hidden, routing, experts)
    got = _grads((out * probe).sum(), params)
    want_out = naive_moe(
        hidden,
        picks_of(routing),
        lambda x, e: naive_swiglu(x, experts.gate_up_proj[e], experts.down_proj[e]),
        num_experts=E,
        null_type="zero",
    )
    want = _grads((want_out * probe).sum(), params)
    torch.testing.assert_close(out, want_out, atol=1e-5, rtol=1e-5)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)
    assert experts.rows_processed == int(((routing.indices >= 0) & (routing.indices < E)).sum())


def test_dispatch_matches_transformers_mixtral_experts():
    """The fused 3D layout is the transformers 5.x one: same weights, same output as MixtralExperts."""
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralExperts

    config = MixtralConfig(hidden_size=H, intermediate_size=INTER, num_local_experts=E, num_experts_per_tok=2)
    config._experts_implementation = "eager"
    hf = MixtralExperts(config)
    ours = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER)
    with torch.no_grad():
        hf.gate_up_proj.copy_(ours.gate_up_proj)
        hf.down_proj.copy_(ours.down_proj)
    routing = TopKRouter(hidden_size=H, num_experts=E, top_k=2).eval()(torch.randn(24, H))
    hidden = torch.randn(24, H)
    want = hf(hidden, routing.indices, routing.weights.detach())
    got = dispatch(hidden, routing.detach(), ours)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ what reaches the GEMMs


class RecordingExperts:
    """Mock experts: records what dispatch feeds the GEMMs and returns (e + 1) * row for expert e."""

    def __init__(self, num_experts: int) -> None:
        self.num_experts = num_experts
        self.calls: list[tuple[torch.Tensor, list[int]]] = []

    def forward_grouped(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor:
        self.calls.append((rows.clone(), list(counts)))
        scale = torch.cat([torch.full((n,), float(e + 1)) for e, n in enumerate(counts)] + [torch.zeros(0)])
        return rows * scale.unsqueeze(1)


def _hand_routing(null_type: str) -> Routing:
    # E = 3 true (0..2), m = 2 nulls (3, 4), k = 3, -1 = empty slot
    indices = torch.tensor(
        [
            [0, 3, 2],  # two true
            [4, 3, -1],  # only nulls: bypass
            [2, 2, 1],  # expert 2 twice (possible in hand-built routings) + expert 1
            [1, 4, 0],
            [3, 4, 3],  # only nulls
        ]
    )
    weights = torch.tensor(
        [[0.6, 0.3, 0.4], [0.2, 0.7, 0.0], [0.5, 0.25, 0.25], [0.1, 0.5, 0.9], [0.2, 0.3, 0.5]]
    )
    if null_type == "zero":
        weights = weights * (indices >= 0) * (indices < 3)
    probs = torch.full((5, 5), 0.2)
    return Routing(
        indices=indices,
        weights=weights,
        probs=probs,
        logits=probs,
        num_experts=3,
        num_null=2,
        null_type=null_type,
    )


@pytest.mark.parametrize("null_type", ["zero", "identity"])
def test_null_and_empty_slots_feed_zero_rows_to_the_experts(null_type):
    routing = _hand_routing(null_type)
    hidden = torch.randn(5, 6)
    mock = RecordingExperts(3)
    out = dispatch(hidden, routing, mock)

    assert len(mock.calls) == 1
    rows, counts = mock.calls[0]
    # true slots: expert 0 x2 (tokens 0, 3), expert 1 x2 (tokens 2, 3), expert 2 x3 (tokens 0, 2, 2)
    assert counts == [2, 2, 3]
    assert rows.shape == (7, 6)
    # rows arrive grouped by expert, each the hidden state of its token
    want_rows = hidden[torch.tensor([0, 3, 2, 3, 0, 2, 2])]
    # within a group the order is not part of the contract: compare as multisets per group
    start = 0
    for n in counts:
        got = sorted(map(tuple, rows[start : start + n].tolist()))
        exp = sorted(map(tuple, want_rows[start : start + n].tolist()))
        assert got == exp
        start += n

    # output: sum_j w_j (e_j + 1) x_t over true slots, + w_j x_t over identity-null slots
    w = routing.weights
    expected = torch.stack(
        [
            (w[0, 0] * 1 + w[0, 2] * 3) * hidden[0],
            0 * hidden[1],
            (w[2, 0] * 3 + w[2, 1] * 3 + w[2, 2] * 2) * hidden[2],
            (w[3, 0] * 2 + w[3, 2] * 1) * hidden[3],
            0 * hidden[4],
        ]
    )
    if null_type == "identity":
        null_w = torch.tensor([w[0, 1], w[1, 0] + w[1, 1], 0.0, w[3, 1], w[4].sum()])
        expected = expected + null_w.unsqueeze(1) * hidden
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    if null_type == "zero":
        assert bool((out[1] == 0).all()) and bool((out[4] == 0).all())  # bypass tokens: exactly zero


def test_all_null_batch_runs_no_gemm_rows_and_outputs_exact_zero():
    routing = _hand_routing("zero")
    routing.indices = torch.tensor([[3, 4, -1]] * 4)
    routing.weights = torch.zeros(4, 3)
    mock = RecordingExperts(3)
    out = dispatch(torch.randn(4, 6), routing, mock)
    assert mock.calls[0][1] == [0, 0, 0] and mock.calls[0][0].shape == (0, 6)
    assert bool((out == 0).all())
    experts = SwiGLUExperts(num_experts=3, hidden_size=6, intermediate_size=4)
    hidden = torch.randn(4, 6, requires_grad=True)
    out = dispatch(hidden, routing, experts)
    assert experts.rows_processed == 0 and bool((out == 0).all())
    out.sum().backward()  # still differentiable
    assert bool((experts.gate_up_proj.grad == 0).all())


def test_real_experts_process_only_true_slots_with_many_nulls():
    router = TopKRouter(hidden_size=H, num_experts=8, top_k=3, num_null=8).eval()
    experts = SwiGLUExperts(num_experts=8, hidden_size=H, intermediate_size=INTER)
    routing = router(torch.randn(64, H))
    dispatch(torch.randn(64, H), routing, experts)
    true_slots = int((routing.indices < 8).sum())
    assert experts.rows_processed == true_slots < 64 * 3


def test_identity_nulls_add_weight_times_input():
    routing = Routing(
        indices=torch.tensor([[2, 3], [0, 2]]),
        weights=torch.tensor([[0.25, 0.5], [0.0, 0.75]]),
        probs=torch.full((2, 4), 0.25),
        logits=torch.zeros(2, 4),
        num_experts=2,
        num_null=2,
        null_type="identity",
    )
    hidden = torch.randn(2, 6)
    out = dispatch(hidden, routing, RecordingExperts(2))
    torch.testing.assert_close(out[0], 0.75 * hidden[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1], (0.0 * 1 + 0.75) * hidden[1], atol=1e-6, rtol=0)


def test_plan_groups_true_slots_by_expert_by_hand():
    slot, token, counts = plan(_hand_routing("zero"))
    assert counts == [2, 2, 3]
    # flat slot ids (t * k + j) of the true picks, grouped by expert, stable within a group
    assert slot.tolist() == [0, 11, 8, 9, 2, 6, 7]
    assert token.tolist() == [0, 3, 2, 3, 0, 2, 2]
