"""The one-pass C++ SwiGLU activation kernels (issue 20) against the torch path they replace and against
torch.autograd on a plain ``F.silu(g) * u`` in float64, on odd shapes (N = 1, I not a multiple of the
vector width, strided halves of an (N, 2I) buffer); and the torch path taken whenever they do not apply."""

from __future__ import annotations

import threading

import pytest
import torch
from torch.nn import functional as F

from adamoe.experts import grouped_mm, kernels, swiglu_act

needs_kernel = pytest.mark.skipif(
    swiglu_act._module() is None, reason="no C++ toolchain to build the activation kernels"
)
SHAPES = [(1, 1), (1, 37), (5, 13), (7, 33), (64, 100)]  # (N, I): I never a multiple of 8/16/32 but 1
TOL = dict(rtol=1e-6, atol=1e-6)  # fp32 round-off; inputs O(1) (the dg formula cancels near g = -1.28)


@pytest.fixture
def spy(monkeypatch):
    """Calls of the kernels by name, the kernels still run."""
    real, calls = swiglu_act._module(), []

    class Spy:
        def __getattr__(self, name):
            fn = getattr(real, name)
            return lambda *a: (calls.append(name), fn(*a))[1]

    monkeypatch.setattr(swiglu_act, "_module", lambda: Spy() if real is not None else None)
    return calls


def _buffer(n, i, seed, pad=0):
    """(g, u): the halves of an (N, 2I + pad) buffer, column offset ``pad``: strided rows, odd start."""
    buf = torch.randn(n, 2 * i + pad, generator=torch.Generator().manual_seed(seed))
    return buf[:, pad : pad + i], buf[:, pad + i :]


def _reference(g, u, dh):
    """h, dg, du by torch.autograd through the plain two-op SiLU-gate, in float64."""
    g64, u64 = (t.double().requires_grad_(True) for t in (g, u))
    h = F.silu(g64) * u64
    h.backward(dh.double())
    return h.detach(), g64.grad, u64.grad


@needs_kernel
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pad", [0, 3])
def test_forward_matches_the_torch_path_and_float64(shape, pad, spy):
    g, u = _buffer(*shape, seed=shape[1], pad=pad)
    assert not g.is_contiguous() or shape[0] == 1
    h = swiglu_act.silu_mul_forward(g, u)
    assert spy == ["silu_mul_out"] and h.shape == shape and h.is_contiguous()
    torch.testing.assert_close(h, F.silu(g).mul_(u), **TOL)
    torch.testing.assert_close(h.double(), _reference(g, u, torch.ones(shape))[0], **TOL)


@needs_kernel
@pytest.mark.parametrize("shape", SHAPES)
def test_autograd_node_matches_the_torch_path_and_float64(shape, spy, monkeypatch):
    dh = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    gu = torch.cat(_buffer(*shape, seed=2), dim=1).requires_grad_(True)
    h = swiglu_act.silu_mul(*gu.chunk(2, dim=-1))
    h.backward(dh)
    assert spy == ["silu_mul_out", "silu_mul_backward_out"]
    want_h, want_g, want_u = _reference(*gu.detach().chunk(2, dim=-1), dh)
    torch.testing.assert_close(h.double(), want_h, **TOL)
    torch.testing.assert_close(gu.grad.double(), torch.cat([want_g, want_u], dim=1), **TOL)

    monkeypatch.setattr(swiglu_act, "_module", lambda: None)  # the torch path, as before the kernels
    old = gu.detach().clone().requires_grad_(True)
    swiglu_act.silu_mul(*old.chunk(2, dim=-1)).backward(dh)
    torch.testing.assert_close(gu.grad, old.grad, **TOL)


@needs_kernel
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_into_writes_the_halves_of_the_gradient_buffer(shape, spy, monkeypatch):
    n, i = shape
    g, u = _buffer(n, i, seed=3, pad=1)
    dh = torch.randn(shape, generator=torch.Generator().manual_seed(4))
    new = torch.full((n, 2 * i), float("nan"))
    swiglu_act.silu_mul_backward_into(dh.clone(), g, u, grad_g=new[:, :i], grad_u=new[:, i:])
    assert spy == ["silu_mul_backward_out"]
    _, want_g, want_u = _reference(g, u, dh)
    torch.testing.assert_close(new.double(), torch.cat([want_g, want_u], dim=1), **TOL)

    monkeypatch.setattr(swiglu_act, "_module", lambda: None)
    old = torch.full((n, 2 * i), float("nan"))
    swiglu_act.silu_mul_backward_into(dh.clone(), g, u, grad_g=old[:, :i], grad_u=old[:, i:])
    torch.testing.assert_close(new, old, **TOL)


@needs_kernel
def test_extreme_gates_stay_finite_and_match_the_torch_path():
    """exp(-g) overflows for g < -88: the kernel clamps (values below 2e-33); large g: no 1 - s cancellation."""
    g = torch.tensor([[-1e4, -100.0, -88.5, -80.0, -20.0, -1.5, 0.0, 1.5, 20.0, 88.5, 100.0, 1e4]] * 2)
    u, dh = torch.full_like(g, 0.5), torch.full_like(g, 2.0)
    h, dg, du = swiglu_act.silu_mul_forward(g, u), torch.empty_like(g), torch.empty_like(g)
    swiglu_act.silu_mul_backward_into(dh, g, u, grad_g=dg, grad_u=du)
    want_h, want_g, want_u = _reference(g, u, dh)
    for got, want in ((h, want_h), (dg, want_g), (du, want_u)):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-30)


@needs_kernel
def test_grouped_kernel_runs_both_kernels_and_matches_the_reference(spy):
    counts, (h, i, e) = [3, 0, 6, 1], (16, 13, 4)
    gen = torch.Generator().manual_seed(5)
    rows = torch.randn(sum(counts), h, generator=gen, requires_grad=True)
    gate_up = (torch.randn(e, 2 * i, h, generator=gen) * h**-0.5).requires_grad_(True)
    down = (torch.randn(e, h, i, generator=gen) * i**-0.5).requires_grad_(True)
    probe = torch.randn(sum(counts), h, generator=gen)
    fast = grouped_mm.grouped_swiglu(rows, gate_up, down, counts)
    fast_grads = torch.autograd.grad((fast * probe).sum(), (rows, gate_up, down))
    assert spy == ["silu_mul_out", "silu_mul_backward_out"]
    ref = grouped_mm.grouped_swiglu_reference(rows, gate_up, down, counts)
    ref_grads = torch.autograd.grad((ref * probe).sum(), (rows, gate_up, down))
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(fast_grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _unavailable(*args):
    raise AssertionError("the activation kernels were reached")


def test_without_the_extension_the_torch_path_runs_bitwise(monkeypatch):
    monkeypatch.setattr(swiglu_act, "_module", lambda: None)
    g, u = _buffer(5, 13, seed=6)
    torch.testing.assert_close(swiglu_act.silu_mul_forward(g, u), F.silu(g) * u, rtol=0, atol=0)


@pytest.mark.parametrize("case", ["bf16", "float64", "meta", "compiling", "needs_graph", "strided_columns"])
def test_the_torch_path_runs_where_the_kernels_do_not_apply(case, monkeypatch):
    monkeypatch.setattr(swiglu_act, "_module", _unavailable)
    g, u = _buffer(4, 6, seed=7)
    dtype = {"bf16": torch.bfloat16, "float64": torch.float64}.get(case, torch.float32)
    g, u = g.to(dtype), u.to(dtype)
    if case == "meta":
        g, u = g.to("meta"), u.to("meta")
    if case == "compiling":
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    if case == "strided_columns":
        g, u = torch.randn(4, 12)[:, ::2], torch.randn(4, 12)[:, 1::2]
    if case == "needs_graph":  # an inference caller's forward under grad mode keeps its graph
        g.requires_grad_(True)
    h = swiglu_act.silu_mul_forward(g, u)
    assert (h.grad_fn is not None) == (case == "needs_graph")
    if case != "meta":
        torch.testing.assert_close(h.detach(), F.silu(g.detach()) * u, rtol=0, atol=0)


def test_create_graph_backward_takes_the_differentiable_torch_path(spy):
    g, u = (t.clone().requires_grad_(True) for t in _buffer(4, 6, seed=8))
    h = swiglu_act.silu_mul(g, u)
    (grad_g,) = torch.autograd.grad(h, g, torch.ones(4, 6), create_graph=True)
    assert "silu_mul_backward_out" not in spy and grad_g.grad_fn is not None
    s = torch.sigmoid(g.detach())
    torch.testing.assert_close(grad_g.detach(), u.detach() * s * (1 + g.detach() * (1 - s)), **TOL)


def test_the_extension_is_built_by_the_decode_build_code_under_its_own_name_and_key(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path))
    monkeypatch.setattr(kernels, "compiler_id", lambda: "/usr/bin/c++ 12.2.0")
    monkeypatch.setattr(kernels, "cpu_features", lambda: "avx2 fma sse2")
    ext = swiglu_act.act_extension()
    assert ext.flags == kernels.FLAGS and set(ext.functions) == {"silu_mul_out", "silu_mul_backward_out"}
    act, decode = kernels.extension_dir(ext), kernels.build_dir()
    assert act.parent == decode.parent == tmp_path / "kernels"
    assert act.name.startswith("adamoe_swiglu_act-torch")
    assert act.name.rsplit("-", 1)[1] != decode.name.rsplit("-", 1)[1]


class _Reached:
    """A stand-in extension that records every kernel reached (and fails it): present, so only
    :func:`swiglu_act.torch_activation` can keep a call away from it."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        self.calls.append(name)
        raise AssertionError(f"the activation kernel {name} was reached")


def _grouped_step(probe_seed=9):
    """Output and (rows, gate_up, down) grads of one grouped_swiglu fwd+bwd and one silu_mul node."""
    counts, (h, i, e) = [3, 0, 6, 1], (16, 13, 4)
    gen = torch.Generator().manual_seed(probe_seed)
    rows = torch.randn(sum(counts), h, generator=gen, requires_grad=True)
    gate_up = (torch.randn(e, 2 * i, h, generator=gen) * h**-0.5).requires_grad_(True)
    down = (torch.randn(e, h, i, generator=gen) * i**-0.5).requires_grad_(True)
    gu = torch.randn(5, 2 * i, generator=gen, requires_grad=True)
    out = grouped_mm.grouped_swiglu(rows, gate_up, down, counts)
    act = swiglu_act.silu_mul(*gu.chunk(2, dim=-1))
    loss = (out * torch.randn(out.shape, generator=gen)).sum() + (
        act * torch.randn(act.shape, generator=gen)
    ).sum()
    return out, act, torch.autograd.grad(loss, (rows, gate_up, down, gu))


def test_torch_activation_keeps_every_call_of_its_thread_off_the_kernels(monkeypatch):
    fake = _Reached()
    monkeypatch.setattr(swiglu_act, "_module", lambda: fake)
    g, u = _buffer(4, 6, seed=10)
    with swiglu_act.torch_activation(), swiglu_act.torch_activation():  # nests
        out, act, grads = _grouped_step()
    with swiglu_act.torch_activation():
        h = swiglu_act.silu_mul_forward(g, u)
        seen = []  # another thread inside this block still reaches the kernels
        worker = threading.Thread(target=lambda: seen.append(_raises(swiglu_act.silu_mul_forward, g, u)))
        worker.start()
        worker.join()
    assert fake.calls == ["silu_mul_out"] and seen == [True]
    torch.testing.assert_close(h, F.silu(g) * u, rtol=0, atol=0)
    with pytest.raises(AssertionError, match="silu_mul_out"):  # out of the block the kernel is reached
        swiglu_act.silu_mul_forward(g, u)
    with pytest.raises(RuntimeError), swiglu_act.torch_activation():
        raise RuntimeError  # an exception leaves the block too
    with pytest.raises(AssertionError, match="silu_mul_backward_out"):
        swiglu_act.silu_mul_backward_into(h.clone(), g, u, grad_g=torch.empty(4, 6), grad_u=torch.empty(4, 6))

    monkeypatch.setattr(swiglu_act, "_module", lambda: None)  # the torch path as without the extension
    want_out, want_act, want_grads = _grouped_step()
    for got, want in zip((out, act, *grads), (want_out, want_act, *want_grads)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def _raises(fn, *args):
    try:
        fn(*args)
    except AssertionError:
        return True
    return False


@needs_kernel
def test_torch_activation_switches_the_built_kernels_off_and_on(spy):
    out, act, grads = _grouped_step()
    assert spy == ["silu_mul_out", "silu_mul_out", "silu_mul_backward_out", "silu_mul_backward_out"]
    spy.clear()
    with swiglu_act.torch_activation():
        t_out, t_act, t_grads = _grouped_step()
    assert spy == []
    for got, want in zip((out, act, *grads), (t_out, t_act, *t_grads)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert swiglu_act.available()
