"""The fused MoE decode kernel against a naive per-token, per-slot loop, and its use by dispatch."""

from __future__ import annotations

import pytest
import torch

from adamoe.dispatch import dispatch
from adamoe.experts import LoRASwiGLUExperts, SwiGLUExperts, kernels
from adamoe.routing.base import Routing

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
