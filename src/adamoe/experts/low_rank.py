"""LoRA on fused 3D expert weights as its own grouped matmuls, never as a merged ``W + ΔW``.

Why (issue 19, item 3): adapting a fused expert weight W (E, out, in) by merging ``W + s·B·A`` on
every forward builds a tensor as large as the expert weights, and the grouped GEMM saves it for
backward: one extra copy of every MoE layer's experts alive until backward (≈ 2.8 GB per layer for
Mixtral-8x7B in bf16). Here, for the rows x of expert e (rows sorted by expert),

    y = x·W_eᵀ + s · (x·A_eᵀ)·B_eᵀ        A (E, r, in), B (E, out, r), s = alpha / r

so autograd keeps x, the (N, r) intermediate and the small A, B; W is frozen and saved only as itself
(a parameter, alive anyway). Shapes: ``rows`` (N, in), output (N, out).

Two ways to run the per-expert products, the same function:

- ``torch._grouped_mm``, one launch per product: always on the sync-free device path of
  :func:`adamoe.dispatch.dispatch_sync_free` (:func:`adapted_grouped_mm`, group offsets on the device);
  on the counted path where the experts backend's rule picks it (:func:`use_grouped_mm`: CUDA or
  ``torch.compile``, bf16). Either way the rank must give 16-byte aligned strides (``r · itemsize`` a
  multiple of 16, i.e. r % 8 == 0 in bf16: :func:`grouped_mm_takes`);
- otherwise one ``F.linear`` per expert with rows (CPU eager, fp32 on CUDA or compiled, an unaligned
  rank).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from adamoe.experts.backend import grouped_mm_fits, rule_backend, run_dtype
from adamoe.experts.swiglu_act import silu_mul

__all__ = ["LowRank", "adapted_grouped_mm", "grouped_mm_takes", "low_rank_swiglu", "use_grouped_mm"]

_ALIGN_BYTES = 16

Product = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(N, in) rows sorted by expert, (E, out, in) weight -> (N, out): one of the two ways above."""


@dataclass(frozen=True, kw_only=True)
class LowRank:
    """The LoRA update of one fused expert weight (E, out, in): ``ΔW_e = scaling · b[e] @ a[e]``.

    ``a`` (E, r, in) and ``b`` (E, out, r), in the weight's dtype; views of the adapter's parameters
    (gradients flow back to them)."""

    a: torch.Tensor
    b: torch.Tensor
    scaling: float

    @property
    def rank(self) -> int:
        return int(self.a.shape[1])


def grouped_mm_takes(dtype: torch.dtype, *low_ranks: LowRank | None) -> bool:
    """Whether ``torch._grouped_mm`` accepts the rank-r products in ``dtype``: its operands' strides must
    be multiples of 16 bytes (CPU and CUDA alike), so the (N, r) intermediate needs r · itemsize % 16 == 0
    (r a multiple of 8 in bf16, of 4 in fp32)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    return all(lr is None or (lr.rank * itemsize) % _ALIGN_BYTES == 0 for lr in low_ranks)


def use_grouped_mm(gate_up: torch.Tensor, *low_ranks: LowRank | None) -> bool:
    """Whether the counted path runs its products through ``torch._grouped_mm``: the experts backend's own
    rule (:func:`adamoe.experts.backend.rule_backend`: on CUDA and under ``torch.compile`` where the kernel
    fits; CPU eager keeps per-expert BLAS calls, the ``grouped`` kernel's, so a zero update is bit-exact)
    and an aligned rank (:func:`grouped_mm_takes`)."""
    compiling = torch.compiler.is_compiling()
    fits = grouped_mm_fits(gate_up, compiling=compiling)
    chosen = rule_backend(gate_up.device.type, compiling=compiling, grouped_mm=fits).backend
    return chosen == "torch_grouped_mm" and grouped_mm_takes(run_dtype(gate_up), *low_ranks)


def _grouped_linear(rows: torch.Tensor, weight: torch.Tensor, *, offsets: torch.Tensor) -> torch.Tensor:
    """(N, in) @ (E, out, in) per group -> (N, out) in one ``torch._grouped_mm`` (``offsets``: (E,) int32
    end row of each group; rows past the last offset come out unwritten)."""
    return torch._grouped_mm(rows, weight.to(rows.dtype).transpose(-2, -1), offs=offsets)


def _packed(low_rank: LowRank | None) -> LowRank | None:
    """``low_rank`` with a contiguous B for ``torch._grouped_mm``, which rejects PEFT's permuted (E, out, r)
    view of ``lora_B`` (a copy of B's size, E·out·r; the per-expert loop takes the view as it is)."""
    return None if low_rank is None else dataclasses.replace(low_rank, b=low_rank.b.contiguous())


def _looped_linear(rows: torch.Tensor, weight: torch.Tensor, *, counts: list[int]) -> torch.Tensor:
    """(N, in) @ (E, out, in) per expert, one ``F.linear`` per expert with rows -> (N, out)."""
    outs = [F.linear(x, w.to(rows.dtype)) for x, w in zip(rows.split(counts), weight) if x.shape[0]]
    return torch.cat(outs)


def _adapted(rows: torch.Tensor, weight: torch.Tensor, low_rank: LowRank | None, mm: Product) -> torch.Tensor:
    """(N, in) -> (N, out): ``rows·W_eᵀ`` plus, with ``low_rank``, ``s·(rows·A_eᵀ)·B_eᵀ`` (module doc)."""
    out = mm(rows, weight)
    if low_rank is None:
        return out
    low = mm(mm(rows, low_rank.a), low_rank.b)
    return out.add_(low, alpha=low_rank.scaling)  # in place: the GEMM's backward does not need its output


def adapted_grouped_mm(
    rows: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor, low_rank: LowRank | None = None
) -> torch.Tensor:
    """(N, in) rows sorted by expert, (E, out, in) weight -> (N, out) through ``torch._grouped_mm`` with
    device-side group ``offsets`` ((E,) int32 end rows), plus the low-rank update when given. The caller
    checks :func:`grouped_mm_takes` and casts for autocast (``_grouped_mm`` is not autocast-aware)."""
    return _adapted(rows, weight, _packed(low_rank), functools.partial(_grouped_linear, offsets=offsets))


def _connected_zeros(rows: torch.Tensor, out_features: int, tensors: list[torch.Tensor]) -> torch.Tensor:
    """(0, out) zeros that still backprop (zero gradients) to every tensor, for an all-null batch."""
    return rows.new_zeros(0, out_features) + 0 * sum(t.sum() for t in tensors)


def low_rank_swiglu(
    rows: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    counts: list[int],
    *,
    gate_up_lora: LowRank | None = None,
    down_lora: LowRank | None = None,
) -> torch.Tensor:
    """SwiGLU experts with LoRA on either projection, computed low-rank (module doc).

    Args:
        rows: (N, H) sorted by expert, ``counts[e]`` rows for expert e (``sum(counts) == N``).
        gate_up: (E, 2I, H) frozen [gate; up] weights; ``down``: (E, H, I).
        gate_up_lora, down_lora: the LoRA update of each, or None (no update on that projection).

    Returns:
        (N, H) expert outputs in the rows' order.
    """
    lows = (gate_up_lora, down_lora)
    if rows.shape[0] == 0:
        tied = [gate_up, down] + [t for lr in lows if lr is not None for t in (lr.a, lr.b)]
        return _connected_zeros(rows, down.shape[1], tied)
    dtype = run_dtype(gate_up)
    mm: Product
    if use_grouped_mm(gate_up, *lows):
        if rows.is_cuda and dtype != rows.dtype:  # autocast: _grouped_mm does not cast for itself
            rows = rows.to(dtype)
        offsets = torch.tensor(counts, dtype=torch.int32, device=rows.device).cumsum(0).to(torch.int32)
        mm = functools.partial(_grouped_linear, offsets=offsets)
        gate_up_lora, down_lora = _packed(gate_up_lora), _packed(down_lora)
    else:
        mm = functools.partial(_looped_linear, counts=counts)
    g, u = _adapted(rows, gate_up, gate_up_lora, mm).chunk(2, dim=-1)
    return _adapted(silu_mul(g, u), down, down_lora, mm)
