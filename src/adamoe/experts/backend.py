"""The ``auto`` experts backend: which SwiGLU kernel runs, per (device, dtype, shape bucket).

The backends (``grouped``, ``torch_grouped_mm``, ``loop``: :mod:`adamoe.experts.grouped_mm`) compute
the same function; which is fastest depends on the shape and the device (issue 12: at the training shape
on CPU ``torch_grouped_mm`` beat ``grouped`` by 11%, at decode the skinny kernel of ``grouped`` wins), so
the first call per shape bucket times them and keeps the winner (:func:`choose_backend`).

Why here, beside the kernels and below :mod:`adamoe.dispatch`: the choice is a property of the kernels,
used by the expert modules (:class:`~adamoe.experts.SwiGLUExperts`) and the HF experts adapter; dispatch
only routes rows to whatever experts it is given. So the imports run one way: kernels -> this module ->
expert modules -> dispatch -> layer.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from adamoe.experts.grouped_mm import (
    grouped_swiglu,
    grouped_swiglu_reference,
    grouped_swiglu_scaled,
    grouped_swiglu_torch,
    grouped_swiglu_torch_scaled,
)

AUTO = "auto"
"""Backend name meaning "choose per shape": :func:`choose_backend`."""

CANDIDATES = ("grouped", "torch_grouped_mm")
"""What the autotune times (``loop`` is the readable reference, never the fastest)."""

AUTOTUNE_ENV = "ADAMOE_AUTOTUNE"
"""``0``: never time, use :func:`rule_backend`; ``1``: time even under pytest; unset: time on CPU, outside
pytest (test results must not depend on a timing) and outside ``torch.compile``."""

AUTOTUNE_REPEATS = 3

TORCH_FLOOR = (2, 9)
"""The first torch whose ``torch._grouped_mm`` has a CPU kernel and the CUDA SM80+ fallback (2.8 has
neither: no CPU kernel at all, CUDA SM90 only); pyproject.toml's torch floor."""

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
    machine's state hits every candidate alike). Shared with the speed benchmarks."""
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


def run_dtype(weight: torch.Tensor) -> torch.dtype:
    """The dtype the expert GEMMs run in: the CUDA autocast dtype under autocast (the grouped kernels
    cast to it, ``torch._grouped_mm`` not being autocast-aware), else the weights' own."""
    if weight.is_cuda and torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    return weight.dtype


def grouped_mm_fits(weight: torch.Tensor, *, compiling: bool | None = None) -> bool:
    """Whether ``torch._grouped_mm`` is the right kernel for expert weights like ``weight`` here.

    The dtype that counts is the one the GEMM runs in (the CUDA autocast dtype under autocast):

    - CUDA: bf16 on SM80+ (SM90 only before torch 2.9). Any other dtype reaches torch's fallback, which
      copies the group offsets to the host and loops over the experts: a sync per layer, no speed-up;
    - under ``torch.compile``: bf16 only (inductor's lowering rejects others: "Expected inputs of BF16 type");
    - CPU eager: any dtype (torch's CPU kernel).
    """
    if not hasattr(torch, "_grouped_mm"):
        return False
    compiling = torch.compiler.is_compiling() if compiling is None else compiling
    dtype = run_dtype(weight)
    # An install below the floor (``pip install --no-deps``) keeps working on the other kernels.
    new_kernel = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= TORCH_FLOOR
    if weight.is_cuda:
        capability = torch.cuda.get_device_capability(weight.device)
        return dtype == torch.bfloat16 and (capability >= (8, 0) if new_kernel else capability[0] == 9)
    return new_kernel and (dtype == torch.bfloat16 or not compiling)


def rule_backend(device_type: str, *, compiling: bool = False, grouped_mm: bool = True) -> BackendChoice:
    """The documented choice when nothing is timed (docs/performance.md), ``grouped_mm`` telling whether
    ``torch._grouped_mm`` fits the weights (:func:`grouped_mm_fits`):

    - CUDA: ``torch_grouped_mm``, one grouped GEMM launch for all experts instead of one per expert;
    - under ``torch.compile``: ``torch_grouped_mm``, an op the compiler traces (no per-expert Python loop);
    - otherwise, or where the kernel does not fit (fp32 on CUDA or compiled): ``grouped``, the hand-written
      autograd kernel (per-expert GEMMs; the skinny decode path on CPU).
    """
    if device_type == "cuda" and grouped_mm:
        return BackendChoice(backend="torch_grouped_mm", reason="rule: CUDA bf16 -> one grouped GEMM launch")
    if compiling and grouped_mm:
        return BackendChoice(backend="torch_grouped_mm", reason="rule: under torch.compile, bf16")
    if device_type == "cuda" or compiling:
        return BackendChoice(backend="grouped", reason="rule: torch._grouped_mm takes bf16 only here")
    return BackendChoice(backend="grouped", reason=f"rule: {device_type} eager, autotune off")


def autotune_enabled(device_type: str) -> bool:
    """Whether :func:`choose_backend` may time candidates here (see :data:`AUTOTUNE_ENV`)."""
    flag = os.environ.get(AUTOTUNE_ENV, "").strip()
    if flag == "0" or device_type != "cpu" or torch.compiler.is_compiling():
        return False
    return flag == "1" or "PYTEST_CURRENT_TEST" not in os.environ


def _bucket(rows: torch.Tensor, gate_up: torch.Tensor, grad: bool) -> tuple:
    """Cache key: device, run dtype, (E, 2I, H), fwd or fwd+bwd, and rows rounded up to a power of two."""
    n = int(rows.shape[0])
    return (rows.device.type, run_dtype(gate_up), tuple(gate_up.shape), grad, 1 << max(n - 1, 0).bit_length())


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
    if torch.compiler.is_compiling():  # the rule, never an eager-timed choice the compiler may not lower
        return rule_backend(
            rows.device.type, compiling=True, grouped_mm=grouped_mm_fits(gate_up, compiling=True)
        )
    grad = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    grad = grad and any(t.requires_grad for t in (rows, gate_up, down))
    key = _bucket(rows, gate_up, grad)
    if key in _CHOICES:
        return _CHOICES[key]
    if rows.shape[0] == 0 or not autotune_enabled(rows.device.type):
        choice = rule_backend(rows.device.type, grouped_mm=grouped_mm_fits(gate_up, compiling=False))
        if rows.shape[0]:
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


def swiglu_function(name: str) -> Callable[..., torch.Tensor]:
    """The SwiGLU function ``fn(rows, gate_up, down, counts)`` of backend ``name`` (:data:`AUTO` or a key of
    :data:`BACKEND_FUNCTIONS`): what :class:`~adamoe.experts.SwiGLUExperts` and the compiled dispatch op
    (:func:`adamoe.dispatch.moe_routed_swiglu`) run, by the same name."""
    return auto_swiglu if name == AUTO else BACKEND_FUNCTIONS[name]


def _reference_scaled(
    rows: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, counts: list[int], scale: torch.Tensor
) -> torch.Tensor:
    return grouped_swiglu_reference(rows, gate_up, down, counts) * scale.unsqueeze(1)


SCALED_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "grouped": grouped_swiglu_scaled,
    "torch_grouped_mm": grouped_swiglu_torch_scaled,
    "loop": _reference_scaled,
}
"""Inference twins of :data:`BACKEND_FUNCTIONS`: ``fn(rows, gate_up, down, counts, scale)`` ->
``scale[i] * swiglu(rows[i])``, the (N,) ``scale`` (routing weights) folded in before the down GEMMs."""


def scaled_swiglu_function(name: str) -> Callable[..., torch.Tensor]:
    """The inference SwiGLU ``fn(rows, gate_up, down, counts, scale)`` of backend ``name`` (:data:`AUTO`:
    the backend :func:`choose_backend` picks for the rows, as :func:`auto_swiglu`): what the compiled
    dispatch op (:func:`adamoe.dispatch.moe_routed_swiglu`) runs."""
    if name != AUTO:
        return SCALED_FUNCTIONS[name]

    def auto_scaled(rows, gate_up, down, counts, scale):
        choice = choose_backend(rows, gate_up, down, counts).backend
        return SCALED_FUNCTIONS[choice](rows, gate_up, down, counts, scale)

    return auto_scaled
