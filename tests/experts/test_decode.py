"""The fused MoE decode kernel against a naive per-token, per-slot loop, and its use by dispatch."""

from __future__ import annotations

import pytest
import torch

from adamoe.dispatch import dispatch
from adamoe.experts import LoRASwiGLUExperts, SwiGLUExperts, kernels
from adamoe.routing.base import Routing
from adamoe.routing.topk import TopKRouter

needs_kernel = pytest.mark.skipif(
    not kernels.available(), reason="no C++ toolchain to build the decode kernel"
)

# H and I are not multiples of the kernel's 32-wide blocks, so the scalar tails are exercised too.
E, NULLS, K, H, INTER = 6, 2, 4, 80, 48


def naive_moe(hidden, gate_up, down, indices, weights, num_experts):
    """For every token and slot: weight * down @ (SiLU(gate @ x) * (up @ x)) of a true expert, else 0."""
    inter = down.shape[2]
    out = torch.zeros(hidden.shape, dtype=torch.float32)
    for t in range(hidden.shape[0]):
        x = hidden[t].float()
        for j in range(indices.shape[1]):
            e = int(indices[t, j])
            if 0 <= e < num_experts:
                g = gate_up[e, :inter].float() @ x
                u = gate_up[e, inter:].float() @ x
                out[t] += float(weights[t, j]) * (down[e].float() @ (g * torch.sigmoid(g) * u))
    return out


def weights_of(num_experts=E):
    gen = torch.Generator().manual_seed(1)
    gate_up = torch.randn(num_experts, 2 * INTER, H, generator=gen) * H**-0.5
    down = torch.randn(num_experts, H, INTER, generator=gen) * INTER**-0.5
    return gate_up, down


def routing_of(tokens, seed=0):
    """(T, K) picks with null slots (>= E), empty slots (-1), an expert picked twice by one token, an
    expert picked by two tokens (when T > 1) and an expert nobody picks; weights in (0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    indices = torch.randint(-1, E + NULLS, (tokens, K), generator=gen)
    indices[indices == E - 1] = 0  # expert E-1 stays empty
    indices[0, :3] = torch.tensor([2, 2, E])  # chosen twice by token 0, then a null
    indices[-1, -1] = -1
    if tokens > 1:
        indices[1, 0] = 2
    weights = torch.rand(tokens, K, generator=gen)
    return indices, weights


def true_slots(indices, num_experts=E):
    return int(((indices >= 0) & (indices < num_experts)).sum())


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@needs_kernel
@pytest.mark.parametrize("tokens", [1, 3, 8])
@pytest.mark.parametrize("num_threads", [1, 2, 3])
def test_fused_kernel_matches_the_naive_loop(tokens, num_threads, threads):
    threads(num_threads)  # 3 threads on 2 cores: uneven row splits, still one barrier
    gate_up, down = weights_of()
    indices, weights = routing_of(tokens, seed=tokens)
    assert bool((indices == -1).any()) and bool((indices >= E).any()) and not bool((indices == E - 1).any())
    hidden = torch.randn(tokens, H)
    out, slots = kernels.moe_decode(hidden, gate_up, down, indices, weights, E)
    torch.testing.assert_close(
        out, naive_moe(hidden, gate_up, down, indices, weights, E), atol=1e-5, rtol=1e-5
    )
    assert slots == true_slots(indices)


@needs_kernel
def test_result_does_not_depend_on_the_thread_count(threads):
    """Threads split rows, never a dot product or the sum over experts: bitwise the same output."""
    gate_up, down = weights_of()
    indices, weights = routing_of(8, seed=3)
    hidden = torch.randn(8, H)
    outs = []
    for n in (1, 2, 3):
        threads(n)
        outs.append(kernels.moe_decode(hidden, gate_up, down, indices, weights, E)[0])
    assert all(torch.equal(outs[0], o) for o in outs[1:])


@needs_kernel
@pytest.mark.parametrize("tokens", [1, 3])
def test_the_no_prefetch_build_computes_the_same_step(tokens):
    """The prefetch A/B variant (issue 20) is another extension with the same arithmetic: a prefetch is a
    hint that changes no sum, so its output is the naive loop's and bitwise the default build's."""
    gate_up, down = weights_of()
    indices, weights = routing_of(tokens, seed=tokens)
    hidden = torch.randn(tokens, H)
    off, off_slots = kernels.moe_decode(hidden, gate_up, down, indices, weights, E, prefetch=False)
    on, on_slots = kernels.moe_decode(hidden, gate_up, down, indices, weights, E)
    assert kernels.load(prefetch=False).__name__ == "adamoe_decode_no_prefetch"
    want = naive_moe(hidden, gate_up, down, indices, weights, E)
    torch.testing.assert_close(off, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(off, on) and off_slots == on_slots == true_slots(indices)


@needs_kernel
def test_bf16_weights_accumulate_in_fp32_and_bf16_hidden_round_trips():
    gate_up, down = (w.bfloat16() for w in weights_of())
    indices, weights = routing_of(5)
    hidden = torch.randn(5, H)
    out, _ = kernels.moe_decode(hidden, gate_up, down, indices, weights, E)
    want = naive_moe(hidden, gate_up, down, indices, weights, E)  # the same bf16 values, in fp32
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    out16, _ = kernels.moe_decode(hidden.bfloat16(), gate_up, down, indices, weights.bfloat16(), E)
    assert out16.dtype == torch.bfloat16
    want16 = naive_moe(hidden.bfloat16(), gate_up, down, indices, weights.bfloat16(), E)
    torch.testing.assert_close(out16.float(), want16, atol=2e-2, rtol=2e-2)


@needs_kernel
def test_all_null_or_empty_slots_give_exact_zeros():
    gate_up, down = weights_of()
    indices = torch.tensor([[E, -1, E + 1], [-1, -1, -1]])
    out, slots = kernels.moe_decode(torch.randn(2, H), gate_up, down, indices, torch.rand(2, 3), E)
    assert slots == 0 and bool((out == 0).all())


def _routing(indices, weights, null_type="zero"):
    return Routing(
        indices=indices,
        weights=weights,
        probs=torch.empty(0),
        logits=torch.empty(0),
        num_experts=E,
        num_null=NULLS,
        null_type=null_type,
    )


def _experts(backend="auto"):
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER, backend=backend)
    gate_up, down = weights_of()
    with torch.no_grad():
        experts.gate_up_proj.copy_(gate_up)
        experts.down_proj.copy_(down)
    return experts


def _forbid_grouped(monkeypatch):
    def fail(self, rows, counts):
        raise AssertionError("forward_grouped ran: the fused decode path was not taken")

    monkeypatch.setattr(SwiGLUExperts, "forward_grouped", fail)


@needs_kernel
@pytest.mark.parametrize("backend", ["auto", "grouped"])
@pytest.mark.parametrize("null_type", ["zero", "identity"])
@pytest.mark.parametrize("tokens", [1, 3, 8])
def test_dispatch_takes_the_fused_path_at_decode(backend, null_type, tokens, monkeypatch):
    experts = _experts(backend)
    indices, weights = routing_of(tokens, seed=10 + tokens)
    hidden = torch.randn(tokens, H)
    want = naive_moe(hidden, experts.gate_up_proj.detach(), experts.down_proj.detach(), indices, weights, E)
    if null_type == "identity":  # identity nulls add weight * x (added by dispatch, after the kernel)
        want += (weights * (indices >= E)).sum(dim=1, keepdim=True) * hidden
    _forbid_grouped(monkeypatch)
    with torch.no_grad():
        out = dispatch(hidden, _routing(indices, weights, null_type), experts)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    assert experts.rows_processed == true_slots(indices)


def test_fused_path_is_not_taken_for_training_large_batches_or_other_backends(monkeypatch):
    """Autograd, T > DECODE_MAX_TOKENS, explicit backends, wrapped forward_grouped and LoRA experts."""
    seen = []
    real = SwiGLUExperts.forward_grouped
    monkeypatch.setattr(
        SwiGLUExperts,
        "forward_grouped",
        lambda self, rows, counts: (seen.append(1), real(self, rows, counts))[1],
    )
    indices, weights = routing_of(3)
    hidden = torch.randn(3, H)
    assert _experts().forward_decode(hidden.requires_grad_(), _routing(indices, weights)) is None  # grad
    with torch.no_grad():
        big_indices, big_weights = routing_of(kernels.DECODE_MAX_TOKENS + 1)
        big = torch.randn(kernels.DECODE_MAX_TOKENS + 1, H)
        assert _experts().forward_decode(big, _routing(big_indices, big_weights)) is None
        for backend in ("torch_grouped_mm", "loop"):
            assert _experts(backend).forward_decode(hidden, _routing(indices, weights)) is None
        wrapped = _experts()
        wrapped.forward_grouped = lambda rows, counts: real(wrapped, rows, counts)  # e.g. expert dropout
        assert wrapped.forward_decode(hidden, _routing(indices, weights)) is None
        lora = LoRASwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER, rank=2, alpha=4.0)
        assert lora.forward_decode(hidden, _routing(indices, weights)) is None
        out = dispatch(big, _routing(big_indices, big_weights), _experts("grouped"))
    assert seen  # the grouped path ran for the large batch
    experts = _experts()
    want = naive_moe(
        big, experts.gate_up_proj.detach(), experts.down_proj.detach(), big_indices, big_weights, E
    )
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)


def test_without_the_kernel_dispatch_falls_back_to_the_grouped_path(monkeypatch):
    monkeypatch.setattr(kernels, "_module", lambda: None)
    experts = _experts("grouped")
    indices, weights = routing_of(2)
    hidden = torch.randn(2, H)
    args = (hidden, experts.gate_up_proj, experts.down_proj, indices, weights, E)
    with torch.no_grad():
        assert kernels.moe_decode(*args) is None
        out = dispatch(hidden, _routing(indices, weights), experts)
    want = naive_moe(hidden, experts.gate_up_proj.detach(), experts.down_proj.detach(), indices, weights, E)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    assert experts.rows_processed == true_slots(indices)


# --- moe_decode_routed: the routing inside the kernel ---------------------------------------------------


def naive_routing(hidden, router, *, num_experts, k, normalize, identity, null_bias=0.0):
    """Per token, in float64 and probability space: softmax of W x (+ bias on null columns), the k most
    probable by a stable sort (equal probabilities: lower index first), then the option's weights."""
    total = router.shape[0]
    indices = torch.zeros(hidden.shape[0], k, dtype=torch.long)
    weights = torch.zeros(hidden.shape[0], k, dtype=torch.float64)
    for t in range(hidden.shape[0]):
        logits = [float(router[e].double() @ hidden[t].double()) for e in range(total)]
        logits = [v + null_bias if e >= num_experts else v for e, v in enumerate(logits)]
        exps = [torch.tensor(v - max(logits), dtype=torch.float64).exp().item() for v in logits]
        p = [v / sum(exps) for v in exps]
        picks = sorted(range(total), key=lambda e: -p[e])[:k]
        contributes = [identity or e < num_experts for e in picks]
        over = contributes if normalize == 2 else [True] * k
        denom = sum(p[e] for e, o in zip(picks, over) if o) if normalize else 1.0
        for j, e in enumerate(picks):
            indices[t, j] = e
            weights[t, j] = p[e] / denom if contributes[j] and denom > 0 else 0.0
    return indices, weights


def naive_routed(hidden, router, gate_up, down, *, num_experts, identity, **rule):
    indices, weights = naive_routing(hidden, router, num_experts=num_experts, identity=identity, **rule)
    out = naive_moe(hidden, gate_up, down, indices, weights.float(), num_experts)
    if identity:
        out += (weights * (indices >= num_experts)).sum(dim=1, keepdim=True).float() * hidden.float()
    return out, indices, weights.float()


def routed(hidden, router, gate_up, down, *, num_experts=E, k=K, normalize=2, identity=False, null_bias=0.0):
    return kernels.moe_decode_routed(
        hidden,
        router,
        gate_up,
        down,
        num_experts=num_experts,
        top_k=k,
        normalize=normalize,
        identity_nulls=identity,
        null_bias=null_bias,
    )


RULES = [  # (num_null, normalize, identity): top-k, AdaMoE options 1 and 2 with zero and identity nulls, raw
    (0, 2, False),
    (NULLS, 2, False),
    (NULLS, 1, False),
    (NULLS, 2, True),
    (NULLS, 1, True),
    (NULLS, 0, False),
]


@needs_kernel
@pytest.mark.parametrize("tokens", [1, 8])
@pytest.mark.parametrize(("num_null", "normalize", "identity"), RULES)
def test_routed_kernel_matches_naive_routing_and_experts(tokens, num_null, normalize, identity):
    gate_up, down = weights_of()
    gen = torch.Generator().manual_seed(tokens + 10 * normalize + identity)
    router = torch.randn(E + num_null, H, generator=gen) * 0.3
    hidden = torch.randn(tokens, H, generator=gen)
    rule = {"normalize": normalize, "identity": identity, "null_bias": 0.5 if num_null else 0.0}
    done = routed(hidden, router, gate_up, down, **rule)
    want_out, want_idx, want_w = naive_routed(hidden, router, gate_up, down, num_experts=E, k=K, **rule)
    assert torch.equal(done.indices, want_idx)
    torch.testing.assert_close(done.weights, want_w, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(done.out, want_out, atol=1e-5, rtol=1e-5)
    logits = hidden.double() @ router.double().T
    logits[:, E:] += rule["null_bias"]
    torch.testing.assert_close(done.logits, logits.float(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(done.probs, logits.softmax(-1).float(), atol=1e-6, rtol=1e-5)
    assert done.slots == true_slots(want_idx)
    if num_null and normalize == 2 and not identity:
        assert bool((want_idx >= E).any())  # the nulls really were picked somewhere


@needs_kernel
def test_routed_kernel_breaks_ties_by_the_lower_index():
    """Equal router rows give bitwise-equal logits; of three experts tied for the top two picks the
    two lowest indices win, and a null tied with a true expert loses to it (the documented rule)."""
    gate_up, down = weights_of()
    u = torch.randn(H)
    scale = torch.tensor([1.0, 3.0, 3.0, 2.0, 3.0, 0.5, 2.0, 0.0])  # E = 6 true, then 2 nulls
    router = (scale[:, None] * u[None, :]).contiguous()
    hidden = (u / u.norm()).reshape(1, H)
    done = routed(hidden, router, gate_up, down, k=2)
    assert done.indices.tolist() == [[1, 2]]
    torch.testing.assert_close(done.weights, torch.tensor([[0.5, 0.5]]))
    done = routed(hidden, router, gate_up, down, k=5)  # 1, 2, 4 (3.0), then 3 before the null 6 (2.0)
    assert done.indices.tolist() == [[1, 2, 4, 3, 6]]
    want, _, _ = naive_routed(hidden, router, gate_up, down, num_experts=E, k=5, normalize=2, identity=False)
    torch.testing.assert_close(done.out, want, atol=1e-5, rtol=1e-5)


@needs_kernel
def test_routed_kernel_is_thread_count_invariant_and_takes_bf16(threads):
    gate_up, down = weights_of()
    router = torch.randn(E + NULLS, H) * 0.3
    hidden = torch.randn(8, H)
    outs = []
    for n in (1, 2, 3):
        threads(n)
        outs.append(routed(hidden, router, gate_up, down, identity=True))
    for other in outs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(outs[0][:5], other[:5]))
    g16, d16, r16 = gate_up.bfloat16(), down.bfloat16(), router.bfloat16()
    done = routed(hidden, r16, g16, d16, identity=True)
    want_out, want_idx, _ = naive_routed(
        hidden, r16.float(), g16.float(), d16.float(), num_experts=E, k=K, normalize=2, identity=True
    )
    assert torch.equal(done.indices, want_idx)
    torch.testing.assert_close(done.out, want_out, atol=1e-5, rtol=1e-5)


def test_routed_kernel_declines_autograd_large_batches_and_bad_rules():
    gate_up, down = weights_of()
    router = torch.randn(E + NULLS, H, requires_grad=True)
    hidden = torch.randn(2, H)
    assert routed(hidden, router, gate_up, down) is None  # the router weight needs a gradient
    with torch.no_grad():
        assert routed(torch.randn(kernels.DECODE_MAX_TOKENS + 1, H), router, gate_up, down) is None
        assert routed(hidden, router, gate_up, down, k=E + NULLS + 1) is None
        assert routed(torch.randn(0, H), router, gate_up, down) is None


def test_under_torch_compile_the_fused_paths_decline_before_touching_the_kernels(monkeypatch):
    """Traced code must not reach the C++ kernels (nor their availability check): issue 20."""

    def untraceable(*args, **kwargs):
        raise AssertionError("a decode kernel was reached while compiling")

    for name in ("_module", "available", "moe_decode", "moe_decode_routed"):
        monkeypatch.setattr(kernels, name, untraceable)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    indices, weights = routing_of(2)
    router = TopKRouter(hidden_size=H, num_experts=E, top_k=K, num_null=NULLS).eval()
    with torch.no_grad():
        assert _experts().forward_decode(torch.randn(2, H), _routing(indices, weights)) is None
        assert _experts().forward_decode_routed(torch.randn(2, H), router.decode_rule()) is None
