"""Grouped SwiGLU over rows sorted by expert: the compute kernel of dispatch.

``grouped_swiglu`` is a hand-written autograd function: one preallocated buffer per stage, one BLAS
call per (expert, stage) written in place with ``out=``, the SiLU-gate done once over all rows and
its backward written straight into the gradient buffer (:mod:`adamoe.experts.swiglu_act`), weight
gradients written slice by slice without a zero fill. This keeps the per-row cost at the dense SwiGLU
GEMM chain's (the benchmark's limit) instead of paying autograd's per-expert slicing, concatenation and
zero-filled gradient accumulation.
"""

from __future__ import annotations

import itertools

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


def _mm_out(rows: torch.Tensor, weight_t: torch.Tensor, out: torch.Tensor) -> None:
    """``out = rows @ weight_t`` (``weight_t`` one expert's transposed weight view)."""
    torch.mm(rows, weight_t, out=out)


def _expert_mms(rows: torch.Tensor, weight: torch.Tensor, counts: list[int], out: torch.Tensor) -> None:
    """Write ``rows[group e] @ weight[e].T`` into ``out[group e]`` for each expert with rows.

    (N, K) ``rows`` and (N, M) ``out`` are sorted by expert (``counts[e]`` rows each), ``weight`` (E, M, K).
    One ``split`` per side and one ``transpose``/``unbind`` of the weights stand for the per-expert
    slicing and ``select``/``t`` (issue 20: four aten calls per expert before); a group of at most
    ``kernels.SKINNY_MAX_ROWS`` rows runs the skinny decode kernel (bound by reading its weight).
    """
    skinny = kernels.available()
    pairs = zip(rows.split(counts), out.split(counts), weight.transpose(1, 2).unbind(0))
    for e, (x, y, w_t) in enumerate(pairs):
        n = x.shape[0]
        if skinny and 0 < n <= kernels.SKINNY_MAX_ROWS:
            kernels.skinny_mm_out(x, weight[e], y)
        elif n:
            _mm_out(x, w_t, y)


def swiglu_forward(
    rows: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    counts: list[int],
    scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The grouped kernel's forward, no autograd: (N, H) rows -> ``gu`` (N, 2I), ``h`` (N, I), ``out`` (N, H).

    ``scale`` (N,), if given, multiplies ``h`` in place before the down GEMMs, so ``out`` rows come
    weighted (``scale[i] * swiglu(rows[i])`` up to fp32 round-off): the routing weights folded into an
    (N, I) pass instead of an (N, H) one after (I < H at the MoE shapes).
    """
    inter = down.shape[2]
    gu = rows.new_empty(rows.shape[0], 2 * inter)
    _expert_mms(rows, gate_up, counts, gu)
    h = silu_mul_forward(gu[:, :inter], gu[:, inter:])
    if scale is not None:
        h.mul_(scale.unsqueeze(1))
    out = rows.new_empty(rows.shape[0], down.shape[1])
    _expert_mms(h, down, counts, out)
    return gu, h, out


class _GroupedSwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows, gate_up, down, counts):
        gu, h, out = swiglu_forward(rows, gate_up, down, counts)
        ctx.save_for_backward(rows, gate_up, down, gu, h)
        ctx.ranges = _ranges(counts)
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
    if torch.is_grad_enabled() and any(t.requires_grad for t in (rows, gate_up, down)):
        return _GroupedSwiGLU.apply(rows, gate_up, down, counts)
    return swiglu_forward(rows, gate_up, down, counts)[2]  # no autograd node to build (issue 20)


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


def grouped_swiglu_scaled(
    rows: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, counts: list[int], scale: torch.Tensor
) -> torch.Tensor:
    """Inference only: (N, H) rows -> (N, H) ``scale[i] * swiglu(rows[i])`` through the grouped kernel,
    ``scale`` (N,) folded in before the down GEMMs (:func:`swiglu_forward`); CUDA takes
    :func:`grouped_swiglu_torch_scaled`, as :func:`grouped_swiglu` does."""
    if rows.device.type == "cuda":
        return grouped_swiglu_torch_scaled(rows, gate_up, down, counts, scale)
    return swiglu_forward(rows, gate_up, down, counts, scale)[2]


def grouped_swiglu_torch_scaled(
    rows: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, counts: list[int], scale: torch.Tensor
) -> torch.Tensor:
    """Inference only: :func:`grouped_swiglu_scaled` through ``torch._grouped_mm`` (the group ends
    summed on the host: ``counts`` is there already)."""
    if rows.is_cuda and torch.is_autocast_enabled("cuda"):
        dtype = torch.get_autocast_dtype("cuda")
        rows, gate_up, down, scale = rows.to(dtype), gate_up.to(dtype), down.to(dtype), scale.to(dtype)
    offs = torch.tensor(list(itertools.accumulate(counts)), dtype=torch.int32, device=rows.device)
    gu = torch._grouped_mm(rows, gate_up.transpose(-2, -1), offs=offs)
    inter = down.shape[2]
    h = silu_mul_forward(gu[:, :inter], gu[:, inter:]).mul_(scale.unsqueeze(1))
    return torch._grouped_mm(h, down.transpose(-2, -1), offs=offs)
