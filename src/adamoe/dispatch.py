"""Permute tokens by expert, drop null and empty slots, run grouped experts, un-permute with weights.

The only place where routing turns into compute. Slots routed to null experts (or left empty by
variable-k routers) are removed *before* the expert GEMMs, so AdaMoE's lower load is a lower wall
clock and not just a lower FLOP count. Null experts have no module: a zero null's slot weight is 0 and the
slot is dropped; an identity null adds ``weight * x`` here. The independent reference is the per-token,
per-slot loop written from scratch in ``tests/test_dispatch.py``.

Imports run one way, kernels -> dispatch -> layer: dispatch knows experts only through the
:class:`GroupedExperts` protocol (and the optional ``forward_decode`` / ``fused_swiglu_weights`` /
``fused_swiglu_lora`` methods), never the expert classes; the ``auto`` backend choice lives beside the
kernels (:mod:`adamoe.experts.backend`).
"""

from __future__ import annotations

import functools
import warnings
from typing import Protocol

import torch

from adamoe.experts import backend, low_rank
from adamoe.routing.base import Routing


class GroupedExperts(Protocol):
    num_experts: int

    def forward_grouped(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor: ...


def plan(routing: Routing) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Sort the true-expert slots by expert.

    Returns ``slot`` (flat indices into the (T*k) slots, grouped by expert, stable), ``token`` (the
    token of each such slot) and ``counts`` (rows per true expert).
    """
    num_experts, k = routing.num_experts, routing.top_k
    flat = routing.indices.reshape(-1)
    key = torch.where((flat >= 0) & (flat < num_experts), flat, torch.full_like(flat, num_experts))
    key_sorted, order = torch.sort(key, stable=True)
    counts_all = torch.bincount(key_sorted, minlength=num_experts + 1)
    counts = counts_all[:num_experts].tolist()
    slot = order[: sum(counts)]
    return slot, slot // k, counts


def dispatch(hidden: torch.Tensor, routing: Routing, experts: GroupedExperts) -> torch.Tensor:
    """(T, H) hidden -> (T, H) weighted sum of the chosen experts' outputs (identity nulls included)."""
    # Optional fused fast path (SwiGLUExperts.forward_decode: inference at decode); None = not taken.
    decode = getattr(experts, "forward_decode", None)
    out = decode(hidden, routing) if decode is not None else None
    if out is None and hidden.device.type in SYNC_FREE_DEVICES:  # CUDA: no host sync (docs/performance.md)
        out = dispatch_sync_free(hidden, routing, experts)
    if out is None:
        slot, token, counts = plan(routing)
        rows = hidden.index_select(0, token)
        expert_out = experts.forward_grouped(rows, counts)
        slot_weights = routing.weights.reshape(-1).index_select(0, slot).to(expert_out.dtype)
        out = torch.zeros_like(hidden).index_add_(0, token, expert_out * slot_weights.unsqueeze(1))
    if routing.null_type == "identity" and routing.num_null > 0:
        identity_weight = (routing.weights * routing.null_mask()).sum(dim=-1, keepdim=True)
        out = out + identity_weight.to(hidden.dtype) * hidden
    return out


# --- the sync-free device path (CUDA): no host synchronisation per MoE layer ---------------------------

SYNC_FREE_DEVICES = ("cuda",)
"""Devices where :func:`dispatch` takes :func:`dispatch_sync_free` (tests add ``cpu`` to exercise it)."""


def fused_swiglu_weights(experts: object) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (E, 2I, H) and (E, H, I) weights of plain SiLU-gated experts, or None to keep ``forward_grouped``.

    Experts opt in with a ``fused_swiglu_weights()`` method (:class:`~adamoe.experts.SwiGLUExperts` on
    its ``auto``/``torch_grouped_mm`` backends, the HF experts adapter); LoRA experts answer None. None
    also for an instance whose ``forward_grouped`` is wrapped (expert dropout; recorders must see each call).
    """
    own = getattr(experts, "fused_swiglu_weights", None)
    if own is None or "forward_grouped" in vars(experts):
        return None
    return own()


def fused_swiglu_lora(experts: object) -> tuple[low_rank.LowRank | None, low_rank.LowRank | None]:
    """The LoRA updates of the fused weights (gate_up, down) that the grouped GEMMs add low-rank, never
    merged (:mod:`adamoe.experts.low_rank`): experts opt in with ``fused_swiglu_lora()``; (None, None)
    for plain experts."""
    own = getattr(experts, "fused_swiglu_lora", None)
    return (None, None) if own is None else own()


def plan_on_device(routing: Routing) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`plan` without a host sync: every (T*k) slot sorted by expert, null and empty slots last.

    Returns ``order`` (slot indices, grouped by expert, stable), ``valid`` ((T*k,) bool: a true expert's
    slot) and ``offsets`` ((E,) int32 end row of each expert's group, on the device). Counts come from a
    ``scatter_add`` into a fixed-size buffer (``bincount`` would read the max back to size its output).
    """
    num_experts = routing.num_experts
    flat = routing.indices.reshape(-1)
    key = torch.where((flat >= 0) & (flat < num_experts), flat, torch.full_like(flat, num_experts))
    key_sorted, order = torch.sort(key, stable=True)
    counts = torch.zeros(num_experts + 1, dtype=torch.long, device=flat.device)
    counts.scatter_add_(0, key, torch.ones_like(key))
    return order, key_sorted < num_experts, counts[:num_experts].cumsum(0).to(torch.int32)


def dispatch_sync_free(hidden: torch.Tensor, routing: Routing, experts: object) -> torch.Tensor | None:
    """(T, H) -> (T, H) routed output of the true slots through ``torch._grouped_mm``, or None (not taken).

    The null and empty slots sit after ``offsets[-1]``, where the grouped GEMMs do no work: they are
    dropped from the GEMMs without a data-dependent shape, so nothing waits for the device. Rows past the
    offsets come out of ``torch._grouped_mm`` unwritten (forward, and the input gradient backward), so they
    are zeroed before the GEMM (its backward zeroes their gradient) and masked before the weighting.
    LoRA updates the experts offer (:func:`fused_swiglu_lora`) run as rank-r grouped GEMMs on the same
    offsets, beside the frozen weights (:func:`adamoe.experts.low_rank.adapted_grouped_mm`).
    """
    weights = fused_swiglu_weights(experts)
    if weights is None:
        return None
    gate_up, down = weights
    gate_up_lora, down_lora = fused_swiglu_lora(experts)
    if not backend.grouped_mm_fits(gate_up):  # fp32 on CUDA: torch's own fallback would sync and loop
        _warn_counted(backend.run_dtype(gate_up), gate_up.device.type)
        return None
    if not low_rank.grouped_mm_takes(backend.run_dtype(gate_up), gate_up_lora, down_lora):
        return None  # a LoRA rank whose (N, r) rows are not 16-byte aligned: the counted path's loop
    order, valid, offsets = plan_on_device(routing)
    token = order // routing.top_k
    keep = valid.unsqueeze(1)
    rows = hidden.index_select(0, token).to(gate_up.dtype).masked_fill(~keep, 0.0)
    if rows.is_cuda and torch.is_autocast_enabled("cuda"):  # _grouped_mm is not autocast-aware
        dtype = torch.get_autocast_dtype("cuda")
        rows, gate_up, down = rows.to(dtype), gate_up.to(dtype), down.to(dtype)
    g, u = low_rank.adapted_grouped_mm(rows, gate_up, offsets, gate_up_lora).chunk(2, dim=-1)
    out = low_rank.adapted_grouped_mm(
        (torch.nn.functional.silu(g) * u).contiguous(), down, offsets, down_lora
    )
    out = torch.where(keep, out, torch.zeros((), dtype=out.dtype, device=out.device)).to(hidden.dtype)
    slot_weights = routing.weights.reshape(-1).index_select(0, order).to(out.dtype)
    return torch.zeros_like(hidden).index_add_(0, token, out * slot_weights.unsqueeze(1))


@functools.cache
def _warn_counted(dtype: torch.dtype, device: str) -> None:
    """Say once per dtype and device that the experts take the counted path instead of ``_grouped_mm``."""
    warnings.warn(
        f"experts: torch._grouped_mm is fast in bf16 only (SM80+); {dtype} experts on {device} take the "
        "counted path (one host sync per MoE layer, one GEMM per expert); train with --dtype bf16",
        stacklevel=4,
    )
