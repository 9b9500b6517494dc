"""Grouped SwiGLU kernels vs a naive row-by-row loop, forward and backward (fp32, atol 1e-5)."""

import pytest
import torch

from adamoe.experts.backend import AUTO, scaled_swiglu_function
from adamoe.experts.grouped_mm import grouped_swiglu, grouped_swiglu_reference, grouped_swiglu_torch

KERNELS = {
    "grouped": grouped_swiglu,
    "torch_grouped_mm": grouped_swiglu_torch,
    "loop": grouped_swiglu_reference,
}
H, INTER, E = 16, 8, 4


def naive_rows(rows, gate_up, down, counts):
    """Row by row: the expert of a row is given by its position in the sorted order."""
    expert_of_row = [e for e, n in enumerate(counts) for _ in range(n)]
    inter = down.shape[2]
    out = []
    for x, e in zip(rows, expert_of_row):
        g = gate_up[e, :inter] @ x
        u = gate_up[e, inter:] @ x
        out.append(down[e] @ (g * torch.sigmoid(g) * u))
    if not out:
        return rows.new_zeros(0, down.shape[1]) + 0 * (gate_up.sum() + down.sum())
    return torch.stack(out)


def leaves(*tensors):
    return [t.detach().clone().requires_grad_(True) for t in tensors]


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("counts", [[3, 0, 5, 1], [0, 0, 7, 0], [1, 1, 1, 1], [0, 6, 0, 2]])
def test_kernel_matches_naive_forward_and_backward(kernel, counts):
    n = sum(counts)
    rows, gate_up, down = (
        torch.randn(n, H),
        torch.randn(E, 2 * INTER, H) * H**-0.5,
        torch.randn(E, H, INTER) * INTER**-0.5,
    )
    probe = torch.randn(n, H)
    a = leaves(rows, gate_up, down)
    b = leaves(rows, gate_up, down)
    out_a = KERNELS[kernel](*a, counts)
    out_b = naive_rows(*b, counts)
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    (out_a * probe).sum().backward()
    (out_b * probe).sum().backward()
    for name, x, y in zip(("rows", "gate_up", "down"), a, b):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-5, rtol=1e-5, msg=name)
    # experts that got no rows get exactly zero gradient
    for e, c in enumerate(counts):
        if c == 0:
            assert bool((a[1].grad[e] == 0).all()) and bool((a[2].grad[e] == 0).all())


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_kernel_with_zero_rows_stays_differentiable(kernel):
    gate_up, down = leaves(torch.randn(E, 2 * INTER, H), torch.randn(E, H, INTER))
    out = KERNELS[kernel](torch.zeros(0, H), gate_up, down, [0, 0, 0, 0])
    assert out.shape == (0, H)
    out.sum().backward()  # graph stays connected: callers can always backprop
    assert bool((gate_up.grad == 0).all()) and bool((down.grad == 0).all())


def test_grouped_kernel_accepts_a_non_contiguous_output_gradient():
    counts = [2, 3, 0, 1]
    rows, gate_up, down = leaves(torch.randn(6, H), torch.randn(E, 2 * INTER, H), torch.randn(E, H, INTER))
    ref = leaves(rows, gate_up, down)
    grouped_swiglu(rows, gate_up, down, counts).sum().backward()  # grad_out is an expanded (stride-0) view
    naive_rows(*ref, counts).sum().backward()
    for x, y in zip((rows, gate_up, down), ref):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-4, rtol=1e-5)


def test_weight_gradients_of_experts_without_rows_are_zero_on_a_dirty_allocator():
    """The weight gradients are not zero-filled (every expert with rows overwrites its slice): the experts
    without rows must still get exact zeros. Freed NaN buffers of the same sizes make the allocator hand
    back dirty memory, so a missing zero shows up as NaN (checked: it does, without the zeroing)."""
    counts = [2, 0, 4, 0]
    rows, gate_up, down = leaves(torch.randn(6, H), torch.randn(E, 2 * INTER, H), torch.randn(E, H, INTER))
    ref = leaves(rows, gate_up, down)
    out = grouped_swiglu(rows, gate_up, down, counts)
    junk = [torch.full_like(gate_up, float("nan")), torch.full_like(down, float("nan"))]
    del junk
    out.sum().backward()
    naive_rows(*ref, counts).sum().backward()
    for x, y in zip((rows, gate_up, down), ref):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-4, rtol=1e-5)
    assert bool((gate_up.grad[[1, 3]] == 0).all()) and bool((down.grad[[1, 3]] == 0).all())


@pytest.mark.parametrize("kernel", [*KERNELS, AUTO])
@pytest.mark.parametrize("counts", [[3, 0, 5, 1], [0, 0, 7, 0], [1, 1, 1, 1], [0, 6, 0, 2]])
def test_scaled_inference_kernels_weight_each_row_of_the_naive_loop(kernel, counts):
    """The inference twins (``scale`` folded in before the down GEMMs) give ``scale[i] * naive row i``;
    groups of 1..7 rows cover the skinny decode kernel and plain GEMMs, empty experts included."""
    n = sum(counts)
    rows, gate_up, down = torch.randn(n, H), torch.randn(E, 2 * INTER, H), torch.randn(E, H, INTER)
    scale = torch.rand(n)
    with torch.no_grad():
        got = scaled_swiglu_function(kernel)(rows, gate_up, down, counts, scale)
    want = naive_rows(rows, gate_up, down, counts) * scale.unsqueeze(1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_grouped_kernel_without_gradients_builds_no_graph_and_matches_the_loop():
    """No gradient wanted (weights requiring grad under ``no_grad``): the forward runs without the
    autograd function and computes the naive loop's rows."""
    counts = [2, 0, 5, 1]
    rows, gate_up, down = leaves(torch.randn(8, H), torch.randn(E, 2 * INTER, H), torch.randn(E, H, INTER))
    with torch.no_grad():
        out = grouped_swiglu(rows, gate_up, down, counts)
        want = naive_rows(rows, gate_up, down, counts)
    assert out.grad_fn is None and not out.requires_grad
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
