"""The one-node SwiGLU activation against the naive two-op autograd reference and the hand formula:
gradcheck in float64, equal results to the path it replaces in float32, at most the memory saved
for backward of that path (counted with saved_tensors_hooks), and no copy in the grouped backward.
The bitwise comparisons are of the torch path (the C++ kernels replaced by None); the kernels are
tested in test_swiglu_act_kernel.py."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from adamoe.experts import swiglu_act
from adamoe.experts.grouped_mm import grouped_swiglu, grouped_swiglu_torch
from adamoe.experts.swiglu_act import silu_mul, silu_mul_backward_into

N, INTER, H, E = 7, 4, 8, 3  # multiples of 4: torch._grouped_mm wants 16-byte strides


def _gu(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(N, 2 * INTER, generator=gen, dtype=dtype) * 2).requires_grad_(True)


def test_gradcheck_float64_as_views_and_as_separate_tensors():
    gu = _gu()
    assert torch.autograd.gradcheck(lambda t: silu_mul(*t.chunk(2, dim=-1)), (gu,))
    assert torch.autograd.gradgradcheck(lambda t: silu_mul(*t.chunk(2, dim=-1)), (gu,))
    g, u = (t.detach().clone().requires_grad_(True) for t in gu.chunk(2, dim=-1))
    assert torch.autograd.gradcheck(silu_mul, (g, u))
    # only one input needing a gradient
    assert torch.autograd.gradcheck(lambda a: silu_mul(a, u.detach()), (g,))


def test_matches_the_hand_formula_and_the_naive_path_in_float32(monkeypatch):
    monkeypatch.setattr(swiglu_act, "_module", lambda: None)
    gu = _gu(torch.float32, seed=1)
    probe = torch.randn(N, INTER)
    g, u = gu.detach().chunk(2, dim=-1)
    s = torch.sigmoid(g.double())
    want_g = probe.double() * u.double() * s * (1 + g.double() * (1 - s))  # d/dg of silu(g) * u
    want_u = probe.double() * g.double() * s

    fused, naive = gu.detach().clone().requires_grad_(True), gu.detach().clone().requires_grad_(True)
    h = silu_mul(*fused.chunk(2, dim=-1))
    h_naive = F.silu(naive[:, :INTER]) * naive[:, INTER:]
    torch.testing.assert_close(h, h_naive, rtol=0, atol=0)
    (h * probe).sum().backward()
    (h_naive * probe).sum().backward()
    torch.testing.assert_close(fused.grad, naive.grad, rtol=0, atol=0)
    torch.testing.assert_close(fused.grad.double(), torch.cat([want_g, want_u], dim=1), rtol=1e-5, atol=1e-6)


def test_backward_into_writes_both_halves_of_one_buffer_and_leaves_no_copy(monkeypatch):
    monkeypatch.setattr(swiglu_act, "_module", lambda: None)
    gu = _gu(torch.float32, seed=2).detach()
    g, u = gu[:, :INTER], gu[:, INTER:]
    grad_h = torch.randn(N, INTER)
    # the path it replaces in the grouped kernel: two temporaries and a copy
    old = torch.empty(N, 2 * INTER)
    old_grad_h = grad_h.clone()
    torch.mul(old_grad_h, F.silu(g), out=old[:, INTER:])
    old_grad_h.mul_(u)
    old[:, :INTER] = torch.ops.aten.silu_backward(old_grad_h, g)

    new = torch.full((N, 2 * INTER), float("nan"))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        silu_mul_backward_into(grad_h, g, u, grad_g=new[:, :INTER], grad_u=new[:, INTER:])
    torch.testing.assert_close(new, old, rtol=0, atol=0)
    ops = [e.name for e in prof.events()]
    assert "aten::copy_" not in ops and not any(op.startswith("aten::empty") for op in ops), ops


def _saved_bytes(fn):
    """Bytes of the distinct storages autograd saves while running ``fn`` (views of one storage count once)."""
    storages: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def test_saves_no_more_than_the_two_op_path():
    gu = torch.randn(N, 2 * INTER, requires_grad=True)
    lin = gu * 1.0  # a non-leaf (N, 2I) output, as the gate_up GEMM's

    def fused():
        silu_mul(*lin.chunk(2, dim=-1))

    def naive():
        g, u = lin.chunk(2, dim=-1)
        F.silu(g) * u

    # fused: g and u, views of the one (N, 2I) output; naive: that output plus silu(g), (N, I)
    assert _saved_bytes(fused) == 4 * N * 2 * INTER
    assert _saved_bytes(naive) == 4 * N * 3 * INTER
    g, u = torch.randn(N, INTER, requires_grad=True), torch.randn(N, INTER, requires_grad=True)
    assert _saved_bytes(lambda: silu_mul(g, u)) == 4 * N * 2 * INTER <= _saved_bytes(lambda: F.silu(g) * u)


def _experts(seed=3):
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randn(N, H, generator=gen)
    gate_up = torch.randn(E, 2 * INTER, H, generator=gen) * H**-0.5
    down = torch.randn(E, H, INTER, generator=gen) * INTER**-0.5
    return rows, gate_up, down


def test_grouped_kernel_gradcheck_in_float64():
    """(torch._grouped_mm has no float64; that path is checked against a row loop in test_grouped_mm.)"""
    counts = [3, 0, 4]
    inputs = [t.double().requires_grad_(True) for t in _experts()]
    assert torch.autograd.gradcheck(lambda *t: grouped_swiglu(*t, counts), inputs)


def test_grouped_kernel_saves_what_it_did_before():
    """rows, gate_up, down, the (N, 2I) gate_up output and h (N, I): the SiLU change adds nothing."""
    rows, gate_up, down = (t.requires_grad_(True) for t in _experts())
    rows_in = rows * 1.0
    saved = _saved_bytes(lambda: grouped_swiglu(rows_in, gate_up, down, [3, 0, 4]))
    assert saved == 4 * (N * H + E * 2 * INTER * H + E * H * INTER + N * 2 * INTER + N * INTER)


def test_torch_grouped_path_saves_less_than_the_two_op_version():
    rows, gate_up, down = (t.requires_grad_(True) for t in _experts())
    offs = torch.tensor([3, 3, 7], dtype=torch.int32)

    def two_op():  # grouped_swiglu_torch before the change
        g, u = torch._grouped_mm(rows, gate_up.transpose(-2, -1), offs=offs).chunk(2, dim=-1)
        torch._grouped_mm((F.silu(g) * u).contiguous(), down.transpose(-2, -1), offs=offs)

    new = _saved_bytes(lambda: grouped_swiglu_torch(rows, gate_up, down, [3, 0, 4]))
    assert new == _saved_bytes(two_op) - 4 * N * INTER  # silu(g) no longer kept
