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

Under ``torch.compile`` the routed experts run as one custom op, :func:`moe_routed_swiglu` (inference
only), so the host read of the group sizes happens inside it and no MoE layer breaks the graph.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
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
    return plan_indices(routing.indices, routing.num_experts)


def plan_indices(indices: torch.Tensor, num_experts: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """:func:`plan` of (T, k) ``indices`` over ``num_experts`` true experts (what :func:`moe_routed_swiglu`
    has: the indices alone). ``tolist`` reads the counts back to the host: the counted path's one sync."""
    k = indices.shape[1]
    # Stable sort of the raw ids: empty (-1) slots first, true experts 0..E-1, nulls (>= E) last; the
    # shifted bincount counts them all, so no key with the dropped slots remapped is built (issue 20).
    ids, order = torch.sort(indices.reshape(-1), stable=True)
    counts_all = torch.bincount(ids + 1, minlength=num_experts + 1).tolist()
    lead, counts = counts_all[0], counts_all[1 : num_experts + 1]
    slot = order[lead : lead + sum(counts)]
    return slot, slot // k, counts


def routed_counted(
    hidden: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor,
    num_experts: int,
    grouped: Callable[[torch.Tensor, list[int]], torch.Tensor],
) -> torch.Tensor:
    """(T, H) -> (T, H) weighted sum of the true slots' expert outputs (nulls and empty slots dropped).

    :func:`plan_indices`, gather the rows, ``grouped(rows, counts)`` ((N, H) rows sorted by expert ->
    (N, H) outputs, e.g. ``forward_grouped``), then scatter them back weighted by the (T, k) ``weights``.
    """
    slot, token, counts = plan_indices(indices, num_experts)
    rows = hidden.index_select(0, token)
    expert_out = grouped(rows, counts)
    slot_weights = weights.reshape(-1).index_select(0, slot).to(expert_out.dtype)
    return torch.zeros_like(hidden).index_add_(0, token, expert_out * slot_weights.unsqueeze(1))


def dispatch(hidden: torch.Tensor, routing: Routing, experts: GroupedExperts) -> torch.Tensor:
    """(T, H) hidden -> (T, H) weighted sum of the chosen experts' outputs (identity nulls included).

    Paths, first taken wins: the fused decode kernel (``forward_decode``: inference at decode, never
    under ``torch.compile``), the sync-free device path (CUDA), under ``torch.compile`` the opaque op
    :func:`moe_routed_swiglu` (no graph break: :func:`compiled_routed`), else the counted path.
    """
    decode = getattr(experts, "forward_decode", None)
    out = decode(hidden, routing) if decode is not None else None
    if out is None and hidden.device.type in SYNC_FREE_DEVICES:  # CUDA: no host sync (docs/performance.md)
        out = dispatch_sync_free(hidden, routing, experts)
    if out is None and torch.compiler.is_compiling():
        out = compiled_routed(hidden, routing, experts)
    if out is None:
        out = routed_counted(
            hidden, routing.indices, routing.weights, routing.num_experts, experts.forward_grouped
        )
    if routing.null_type == "identity" and routing.num_null > 0:
        identity_weight = (routing.weights * routing.null_mask()).sum(dim=-1, keepdim=True)
        out = out + identity_weight.to(hidden.dtype) * hidden
    return out


# --- under torch.compile: the routed experts as one opaque op (issue 20) -----------------------------


ROUTED_OP = "adamoe::moe_routed_swiglu"
"""The qualified name of :func:`moe_routed_swiglu` (what a compiled graph calls)."""


@torch.library.custom_op(ROUTED_OP, mutates_args=())
def moe_routed_swiglu(
    hidden: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    num_experts: int,
    kernel: str,
) -> torch.Tensor:
    """(T, H) hidden, (T, k) routing ``indices``/``weights``, (E, 2I, H) ``gate_up``, (E, H, I) ``down``
    -> (T, H) weighted sum of the true slots' SwiGLU outputs (identity nulls not included).

    Why an op: the counted path reads the group sizes back to the host (:func:`plan_indices`), which
    ``torch.compile`` cannot trace, so it broke the graph at every MoE layer. As a custom op the compiler
    sees one call with a known (T, H) output (:func:`_moe_routed_swiglu_fake`) and the host read happens
    inside it at run time, in eager code: :func:`routed_swiglu`, the counted path's inference twin.

    Inference only, no autograd registered: :func:`compiled_routed` calls it only when no gradient is
    needed and otherwise keeps the counted path (graph breaks, exact gradients). A backward op would need
    the grouped SwiGLU's backward a second time outside its autograd function (``_GroupedSwiGLU``), or a
    forward recompute inside it; the compiled prefill of issue 20 runs under ``inference_mode``, and
    compiled training on CUDA already takes the traceable :func:`dispatch_sync_free` (bf16 ``_grouped_mm``).
    """
    return routed_swiglu(hidden, indices, weights, gate_up, down, num_experts, kernel)


@moe_routed_swiglu.register_fake
def _moe_routed_swiglu_fake(
    hidden: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    num_experts: int,
    kernel: str,
) -> torch.Tensor:
    """The output the compiler plans with: ``hidden``'s shape, dtype and strides (:func:`routed_swiglu`
    returns a ``zeros_like(hidden)``)."""
    return torch.empty_like(hidden)


def routed_swiglu(
    hidden: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    num_experts: int,
    kernel: str,
) -> torch.Tensor:
    """The eager body of :func:`moe_routed_swiglu` (inference only: no autograd through it), shapes as there.

    :func:`routed_counted` with the weighting moved into the experts: :func:`plan_indices`, gather the
    rows and, with one ``take``, their routing weights, run the SwiGLU backend ``kernel``'s inference twin
    (:func:`adamoe.experts.backend.scaled_swiglu_function`: the weights scale the (N, I) activations
    before the down GEMMs, so no (N, H) product is allocated), then one ``index_add_`` into (T, H) zeros.
    Rows run in the weights' dtype (as the HF adapter's); dtype casts happen only where dtypes differ.
    Why (issue 20): each aten call here costs about as much as a small GEMM's setup, times 30 layers;
    ``tests/test_dispatch_compiled.py`` bounds how many it launches.
    """
    slot, token, counts = plan_indices(indices, num_experts)
    out = torch.zeros_like(hidden)
    if slot.shape[0] == 0:
        return out
    rows = hidden.index_select(0, token)
    scale = weights.take(slot)
    if rows.dtype != gate_up.dtype:
        rows = rows.to(gate_up.dtype)
    if scale.dtype != rows.dtype:
        scale = scale.to(rows.dtype)
    expert_out = backend.scaled_swiglu_function(kernel)(rows, gate_up, down, counts, scale)
    if expert_out.dtype != hidden.dtype:
        expert_out = expert_out.to(hidden.dtype)
    return out.index_add_(0, token, expert_out)


def compiled_routed(hidden: torch.Tensor, routing: Routing, experts: object) -> torch.Tensor | None:
    """(T, H) -> (T, H) routed output through :func:`moe_routed_swiglu` (under ``torch.compile``), or None.

    None keeps the counted path: experts without plain fused SwiGLU weights (:func:`fused_swiglu_weights`:
    LoRA, explicit ``grouped``/``loop`` backends, a wrapped ``forward_grouped``), LoRA factors
    (:func:`fused_swiglu_lora`), or a gradient to compute (the op has no backward). The op does not set
    ``rows_processed`` on the experts (its row count is known only at run time).
    """
    fused = fused_swiglu_weights(experts)
    kernel = getattr(experts, "backend", backend.AUTO)
    if fused is None or any(lr is not None for lr in fused_swiglu_lora(experts)):
        return None
    if kernel != backend.AUTO and kernel not in backend.BACKEND_FUNCTIONS:
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in (hidden, routing.weights, *fused)):
        return None
    gate_up, down = fused
    return moe_routed_swiglu(
        hidden, routing.indices, routing.weights, gate_up, down, routing.num_experts, kernel
    )


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
