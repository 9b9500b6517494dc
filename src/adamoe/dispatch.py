"""Permute tokens by expert, drop null and empty slots, run grouped experts, un-permute with weights.

The only place where routing turns into compute. Slots routed to null experts (or left empty by
variable-k routers) are removed *before* the expert GEMMs, so AdaMoE's lower load is a lower wall
clock and not just a lower FLOP count. Null experts have no module: a zero null's slot weight is 0 and the
slot is dropped; an identity null adds ``weight * x`` here. The independent reference is the per-token,
per-slot loop written from scratch in ``tests/test_dispatch.py``.

The ``auto`` experts backend is chosen here too (:func:`choose_backend`): the backends compute the same
function, and which is fastest depends on the shape and the device (issue 12: at the training shape on
CPU ``torch_grouped_mm`` beat ``grouped`` by 11%, at decode the skinny kernel of ``grouped`` wins), so
the first call per shape bucket times them and keeps the winner.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from adamoe.experts.grouped_mm import grouped_swiglu, grouped_swiglu_reference, grouped_swiglu_torch
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


# --- the default experts backend: the fastest per (device, dtype, shape bucket) ----------------------

AUTO = "auto"
"""Backend name meaning "choose per shape": :func:`choose_backend`."""

CANDIDATES = ("grouped", "torch_grouped_mm")
"""What the autotune times (``loop`` is the readable reference, never the fastest)."""

AUTOTUNE_ENV = "ADAMOE_AUTOTUNE"
"""``0``: never time, use :func:`rule_backend`; ``1``: time even under pytest; unset: time on CPU, outside
pytest (test results must not depend on a timing) and outside ``torch.compile``."""

AUTOTUNE_REPEATS = 3

Timer = Callable[[dict[str, Callable[[], object]]], dict[str, float]]
"""Seconds per call of each named function (tests pass a fake one: nothing in a test may be timed)."""


@dataclass(frozen=True, kw_only=True)
class BackendChoice:
    """The backend a shape bucket runs, why (``rule: ...`` or ``autotune: ...``) and the trial seconds."""

    backend: str
    reason: str
    seconds: dict[str, float] = field(default_factory=dict)


_CHOICES: dict[tuple, BackendChoice] = {}


def interleaved_times(
    fns: dict[str, Callable[[], Any]], *, warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Seconds of each call of each function, timed round-robin after ``warmup`` rounds (so drift in the
    machine's state hits every candidate alike). Shared with :mod:`adamoe.speed`."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def interleaved_medians(fns: dict[str, Callable[[], Any]], *, warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each function (:func:`interleaved_times`)."""
    times = interleaved_times(fns, warmup=warmup, repeats=repeats)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _default_timer(fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    return interleaved_medians(fns, warmup=1, repeats=AUTOTUNE_REPEATS)


def rule_backend(device_type: str, *, compiling: bool = False) -> BackendChoice:
    """The documented choice when nothing is timed (docs/performance.md):

    - CUDA: ``torch_grouped_mm``, one grouped GEMM launch for all experts instead of one per expert;
    - under ``torch.compile``: ``torch_grouped_mm``, an op the compiler traces (no per-expert Python loop);
    - otherwise (CPU eager): ``grouped``, the hand-written autograd kernel with the skinny decode path.
    """
    if device_type == "cuda":
        return BackendChoice(backend="torch_grouped_mm", reason="rule: CUDA -> one grouped GEMM launch")
    if compiling:
        return BackendChoice(backend="torch_grouped_mm", reason="rule: under torch.compile")
    return BackendChoice(backend="grouped", reason=f"rule: {device_type} eager, autotune off")


def autotune_enabled(device_type: str) -> bool:
    """Whether :func:`choose_backend` may time candidates here (see :data:`AUTOTUNE_ENV`)."""
    flag = os.environ.get(AUTOTUNE_ENV, "").strip()
    if flag == "0" or device_type != "cpu" or torch.compiler.is_compiling():
        return False
    return flag == "1" or "PYTEST_CURRENT_TEST" not in os.environ


def _bucket(rows: torch.Tensor, gate_up: torch.Tensor, grad: bool) -> tuple:
    """Cache key: device, dtype, (E, 2I, H), fwd or fwd+bwd, and rows rounded up to a power of two."""
    n = int(rows.shape[0])
    return (rows.device.type, gate_up.dtype, tuple(gate_up.shape), grad, 1 << max(n - 1, 0).bit_length())


def _trial(
    fn: Callable[..., torch.Tensor],
    rows: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    counts,
    grad,
) -> Callable[[], object]:
    """One call of ``fn`` on detached copies (forward, plus backward when the real call will need it)."""
    r, gu, d = (t.detach().requires_grad_(grad) for t in (rows, gate_up, down))
    if not grad:
        return lambda: fn(r, gu, d, counts)
    probe = torch.ones(rows.shape[0], down.shape[1], dtype=rows.dtype, device=rows.device)

    def fwd_bwd() -> object:
        with torch.enable_grad():
            return torch.autograd.grad(fn(r, gu, d, counts), (r, gu, d), probe)

    return fwd_bwd


def choose_backend(
    rows: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    counts: list[int],
    *,
    timer: Timer | None = None,
) -> BackendChoice:
    """The backend for SwiGLU experts on (N, H) ``rows`` grouped by ``counts``: cached per shape bucket.

    The first call of a bucket times :data:`CANDIDATES` (forward, or forward+backward when gradients will
    flow) on detached copies, interleaved, and keeps the fastest for the life of the process; later calls
    are a dict look-up. Every candidate computes the same function (to fp32 round-off).
    """
    grad = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    grad = grad and any(t.requires_grad for t in (rows, gate_up, down))
    key = _bucket(rows, gate_up, grad)
    if key in _CHOICES:
        return _CHOICES[key]
    if rows.shape[0] == 0 or not autotune_enabled(rows.device.type):
        choice = rule_backend(rows.device.type, compiling=torch.compiler.is_compiling())
        if rows.shape[0] and not torch.compiler.is_compiling():  # no cache writes inside a traced graph
            _CHOICES[key] = choice
        return choice
    fns = {name: _trial(BACKEND_FUNCTIONS[name], rows, gate_up, down, counts, grad) for name in CANDIDATES}
    with torch.no_grad() if not grad else contextlib.nullcontext():
        seconds = (timer or _default_timer)(fns)
    best = min(seconds, key=seconds.__getitem__)
    times = ", ".join(f"{name} {seconds[name] * 1e3:.3g} ms" for name in CANDIDATES)
    mode = "fwd+bwd" if grad else "fwd"
    reason = f"autotune ({mode}, {key[-1]}-row bucket): {times}"
    _CHOICES[key] = BackendChoice(backend=best, reason=reason, seconds=seconds)
    return _CHOICES[key]


def chosen_backends() -> dict[str, BackendChoice]:
    """Every cached choice of this process, keyed by a readable bucket (what ``adamoe bench`` prints)."""
    return {
        f"{dev} {str(dt).removeprefix('torch.')} E{s[0]} H{s[2]} I{s[1] // 2} {'fwd+bwd' if g else 'fwd'} <= {n} rows": c
        for (dev, dt, s, g, n), c in _CHOICES.items()
    }


def clear_backend_choices() -> None:
    """Forget every cached choice (tests; a benchmark that wants the first-call cost again)."""
    _CHOICES.clear()


def auto_swiglu(
    rows: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, counts: list[int]
) -> torch.Tensor:
    """SwiGLU of ``rows`` (sorted by expert, ``counts[e]`` each) through the backend :func:`choose_backend`
    picks: the ``auto`` backend, the default of :class:`~adamoe.experts.SwiGLUExperts` and of converted models."""
    return BACKEND_FUNCTIONS[choose_backend(rows, gate_up, down, counts).backend](rows, gate_up, down, counts)


BACKEND_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "grouped": grouped_swiglu,
    "torch_grouped_mm": grouped_swiglu_torch,
    "loop": grouped_swiglu_reference,
}


# --- the sync-free device path (CUDA): no host synchronisation per MoE layer ---------------------------

SYNC_FREE_DEVICES = ("cuda",)
"""Devices where :func:`dispatch` takes :func:`dispatch_sync_free` (tests add ``cpu`` to exercise it)."""


def fused_swiglu_weights(experts: object) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (E, 2I, H) and (E, H, I) weights of plain SiLU-gated experts, or None to keep ``forward_grouped``.

    None for an instance whose ``forward_grouped`` is wrapped (expert dropout, recorders must see each
    call), for LoRA experts and for explicit ``grouped``/``loop`` backends. Adapters (the HF experts
    implementation) opt in with a ``fused_swiglu_weights()`` method.
    """
    from adamoe.experts.swiglu import SwiGLUExperts  # function-level: the experts package imports this

    if "forward_grouped" in vars(experts):
        return None
    own = getattr(experts, "fused_swiglu_weights", None)
    if own is not None:
        return own()
    if type(experts) is SwiGLUExperts and experts.backend in (AUTO, "torch_grouped_mm"):
        return experts.gate_up_proj, experts.down_proj
    return None


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
    """
    weights = fused_swiglu_weights(experts)
    if weights is None:
        return None
    gate_up, down = weights
    order, valid, offsets = plan_on_device(routing)
    token = order // routing.top_k
    keep = valid.unsqueeze(1)
    rows = hidden.index_select(0, token).to(gate_up.dtype).masked_fill(~keep, 0.0)
    if rows.is_cuda and torch.is_autocast_enabled("cuda"):  # _grouped_mm is not autocast-aware
        dtype = torch.get_autocast_dtype("cuda")
        rows, gate_up, down = rows.to(dtype), gate_up.to(dtype), down.to(dtype)
    g, u = torch._grouped_mm(rows, gate_up.transpose(-2, -1), offs=offsets).chunk(2, dim=-1)
    out = torch._grouped_mm(
        (torch.nn.functional.silu(g) * u).contiguous(), down.transpose(-2, -1), offs=offsets
    )
    out = torch.where(keep, out, torch.zeros((), dtype=out.dtype, device=out.device)).to(hidden.dtype)
    slot_weights = routing.weights.reshape(-1).index_select(0, order).to(out.dtype)
    return torch.zeros_like(hidden).index_add_(0, token, out * slot_weights.unsqueeze(1))
