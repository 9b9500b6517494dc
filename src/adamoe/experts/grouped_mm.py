"""Grouped SwiGLU over rows sorted by expert: the compute kernel of dispatch.

``grouped_swiglu`` is a hand-written autograd function: one preallocated buffer per stage, one BLAS
call per (expert, stage) written in place with ``out=``, the SiLU-gate done once over all rows and
its backward written straight into the gradient buffer (:mod:`adamoe.experts.swiglu_act`), weight
gradients written slice by slice without a zero fill. This keeps the per-row cost at the dense SwiGLU
GEMM chain's (the benchmark's limit) instead of paying autograd's per-expert slicing, concatenation and
zero-filled gradient accumulation.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from adamoe.experts import kernels
from adamoe.experts.swiglu_act import silu_mul, silu_mul_backward_into, silu_mul_forward


def _ranges(counts: list[int]) -> list[tuple[int, int, int]]:
    out, start = [], 0
    for e, n in enumerate(counts):
        if n:
            out.append((e, start, start + n))
        start += n
    return out


def _weight_grad(weight: torch.Tensor, ranges: list[tuple[int, int, int]]) -> torch.Tensor:
    """An uninitialised (E, ...) gradient buffer for ``weight`` whose rows-free experts are zeroed.

    Why not ``zeros_like``: every expert with rows overwrites its whole slice with one ``mm(out=)``, so a
    zero fill of all E slices is a wasted pass over the weights' size (issue 20); only the experts that got
    no rows (absent from ``ranges``) need their zero gradient written.
    """
    grad = torch.empty_like(weight, memory_format=torch.contiguous_format)
    present = {e for e, _, _ in ranges}
    for e in range(weight.shape[0]):
        if e not in present:
            grad[e].zero_()
    return grad


def _mm_out(rows: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> None:
    torch.mm(rows, weight.t(), out=out)


class _GroupedSwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows, gate_up, down, counts):
        ranges = _ranges(counts)
        n, inter = rows.shape[0], down.shape[2]
        # Decode regime (a few rows for an expert): the product is bound by reading its weights.
        skinny = kernels.available()
        mms = [
            kernels.skinny_mm_out if skinny and t - s <= kernels.SKINNY_MAX_ROWS else _mm_out
            for _, s, t in ranges
        ]
        gu = rows.new_empty(n, 2 * inter)
        for mm, (e, s, t) in zip(mms, ranges):
            mm(rows[s:t], gate_up[e], gu[s:t])
        h = silu_mul_forward(gu[:, :inter], gu[:, inter:])
        out = rows.new_empty(n, down.shape[1])
        for mm, (e, s, t) in zip(mms, ranges):
            mm(h[s:t], down[e], out[s:t])
        ctx.save_for_backward(rows, gate_up, down, gu, h)
        ctx.ranges = ranges
        return out

    @staticmethod
    def backward(ctx, grad_out):
        rows, gate_up, down, gu, h = ctx.saved_tensors
        ranges = ctx.ranges
        grad_out = grad_out.contiguous()
        n, inter = rows.shape[0], down.shape[2]
        need_x, need_gu, need_down = ctx.needs_input_grad[:3]

        grad_down = None
        if need_down:
            grad_down = _weight_grad(down, ranges)
            for e, s, t in ranges:
                torch.mm(grad_out[s:t].t(), h[s:t], out=grad_down[e])
        grad_h = rows.new_empty(n, inter)
        for e, s, t in ranges:
            torch.mm(grad_out[s:t], down[e], out=grad_h[s:t])

        grad_gu = rows.new_empty(n, 2 * inter)
        g, u = gu[:, :inter], gu[:, inter:]
        silu_mul_backward_into(grad_h, g, u, grad_g=grad_gu[:, :inter], grad_u=grad_gu[:, inter:])
        del grad_h

        grad_rows = grad_gate_up = None
        if need_x:
            grad_rows = rows.new_empty(rows.shape)
            for e, s, t in ranges:
                torch.mm(grad_gu[s:t], gate_up[e], out=grad_rows[s:t])
        if need_gu:
            grad_gate_up = _weight_grad(gate_up, ranges)
            for e, s, t in ranges:
                torch.mm(grad_gu[s:t].t(), rows[s:t], out=grad_gate_up[e])
        return grad_rows, grad_gate_up, grad_down, None


def grouped_swiglu(
    rows: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, counts: list[int]
) -> torch.Tensor:
    """SwiGLU of ``rows`` (sorted by expert, ``counts[e]`` rows each) through fused 3D expert weights."""
    if rows.shape[0] == 0:
        # Keep the graph connected so callers can always backprop through the output.
        return rows.new_zeros(0, down.shape[1]) + 0 * (gate_up.sum() + down.sum())
    if rows.device.type == "cuda":
        # On CUDA one grouped GEMM launch beats a BLAS call per expert; the loop below is a CPU design.
        return grouped_swiglu_torch(rows, gate_up, down, counts)
    return _GroupedSwiGLU.apply(rows, gate_up, down, counts)


def grouped_swiglu_reference(
    rows: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, counts: list[int]
) -> torch.Tensor:
    """Plain per-expert loop with autograd: the readable reference the fast kernels are tested against."""
    outs = []
    for e, s, t in _ranges(counts):
        g, u = F.linear(rows[s:t], gate_up[e]).chunk(2, dim=-1)
        outs.append(F.linear(F.silu(g) * u, down[e]))
    if not outs:
        return rows.new_zeros(0, down.shape[1]) + 0 * (gate_up.sum() + down.sum())
    return torch.cat(outs, dim=0)


def grouped_swiglu_torch(
    rows: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, counts: list[int]
) -> torch.Tensor:
    """The same computation through ``torch._grouped_mm`` (kept as a backend to compare against)."""
    if rows.shape[0] == 0:
        return grouped_swiglu_reference(rows, gate_up, down, counts)
    if rows.is_cuda and torch.is_autocast_enabled("cuda"):
        # torch._grouped_mm is not autocast-aware: run it in the autocast dtype, as the dense GEMMs are.
        dtype = torch.get_autocast_dtype("cuda")
        rows, gate_up, down = rows.to(dtype), gate_up.to(dtype), down.to(dtype)
    offs = torch.tensor(counts, dtype=torch.int32, device=rows.device).cumsum(0).to(torch.int32)
    gu = torch._grouped_mm(rows, gate_up.transpose(-2, -1), offs=offs)
    g, u = gu.chunk(2, dim=-1)
    return torch._grouped_mm(silu_mul(g, u), down.transpose(-2, -1), offs=offs)
