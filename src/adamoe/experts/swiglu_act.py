"""SwiGLU's activation ``h = silu(g) * u`` as one autograd node, and its backward written into the
caller's gradient buffers.

Why (issue 20): as two autograd ops (``F.silu(g) * u``) the activation saves ``g``, ``silu(g)`` and ``u``
for backward (one (N, I) tensor more than it needs) and its backward runs the ``silu`` and ``mul`` nodes
apart; the grouped kernel's hand-written backward (:mod:`adamoe.experts.grouped_mm`) allocated two (N, I)
temporaries and copied one of them into the gradient buffer. Here, with ``s = sigmoid(g)``:

    grad_u = grad_h * silu(g)
    grad_g = grad_h * u * s * (1 + g * (1 - s))      (= aten.silu_backward(grad_h * u, g))

- :class:`SiLUMul` / :func:`silu_mul`: forward saves only ``g`` and ``u`` (views of the gate_up output
  in the callers, so nothing new is kept alive), backward computes both gradients from them.
- :func:`silu_mul_backward_into`: for a caller that owns ``grad_h`` and has the (N, 2I) gradient buffer
  ready: four in-place/``out=`` passes, no temporary, no copy (strided ``out=`` views are written in
  place by ATen's element-wise kernels).

Eager torch has no one-pass op for either direction: its forward is two passes (``silu`` into the new
``h``, then ``mul_`` in place) and its backward four. On CPU in fp32 the C++ kernels of
:mod:`adamoe.experts.act_kernel_source` do each in ONE pass (read 2 / write 1 forward, read 3 / write 2
backward: the limit's element-wise model, :mod:`adamoe.bench.limit`), on strided row views, writing
straight into the caller's buffers (issue 20). They serve a call when :func:`_kernel_for` says so (eager,
no autograd through the call, CPU fp32 2-D tensors of one shape with contiguous columns, extension built);
otherwise the torch ops above run, unchanged. :func:`torch_activation` turns the kernels off for a block
on one thread (the A/B of ``adamoe bench``'s training section); ``ADAMOE_NO_KERNELS=1`` turns them off
for the whole process. Shapes: ``g``, ``u``, ``h`` and the gradients are (N, I).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch.nn import functional as F

from adamoe.experts import kernels
from adamoe.experts.act_kernel_source import SOURCE

__all__ = [
    "SiLUMul",
    "act_extension",
    "available",
    "silu_mul",
    "silu_mul_backward_into",
    "silu_mul_forward",
    "torch_activation",
]

ACT_NAME = "adamoe_swiglu_act"
ACT_FUNCTIONS = ("silu_mul_out", "silu_mul_backward_out")


def act_extension() -> kernels.Extension:
    """The one-pass activation kernels, built by :func:`kernels.load_extension` with the decode flags."""
    return kernels.Extension(ACT_NAME, SOURCE, ACT_FUNCTIONS, kernels.flags())


def _module() -> Any | None:
    """The built activation kernels, or None (tests replace this to take the torch paths)."""
    return kernels.load_extension(act_extension())


def available() -> bool:
    """Whether the activation kernels are built in this process (False without a compiler or with
    ``ADAMOE_NO_KERNELS``); builds them on first call, like the first training step would."""
    return _module() is not None


_off = threading.local()  # .depth: how many torch_activation blocks this thread is inside


@contextlib.contextmanager
def torch_activation() -> Iterator[None]:
    """Inside this block, on this thread only, every SiLU-gate call takes the torch path (as under
    ``ADAMOE_NO_KERNELS=1``), forward and backward; other threads keep the kernels. Nests.

    Why: a same-run A/B of the kernels (``adamoe_grouped_torch_act`` in :mod:`adamoe.bench.training`)
    needs both sides in one process, timed in the same rounds. Per thread is enough: an eager CPU
    ``backward()`` runs its nodes on the thread that called it, so a step inside the block is covered."""
    _off.depth = getattr(_off, "depth", 0) + 1
    try:
        yield
    finally:
        _off.depth -= 1


def _kernel_for(*tensors: torch.Tensor) -> Any | None:
    """The C++ kernels if they serve a call on these (N, I) tensors, else None (then the torch ops run).

    They serve eager calls (not under ``torch.compile``: checked before the extension is touched) that
    need no autograd graph, on plain CPU fp32 2-D tensors of one shape whose columns are contiguous (rows
    may be strided: the halves of an (N, 2I) buffer), outside :func:`torch_activation`."""
    if torch.compiler.is_compiling() or getattr(_off, "depth", 0):
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None
    shape = tensors[0].shape
    for t in tensors:
        plain = type(t) is torch.Tensor and t.device.type == "cpu" and t.dtype == torch.float32
        if not (plain and t.dim() == 2 and t.shape == shape and (t.stride(1) == 1 or shape[1] <= 1)):
            return None
    return _module()


def silu_mul_forward(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """(N, I), (N, I) -> new contiguous (N, I) ``silu(g) * u``: one pass with the C++ kernel where it
    applies, else two torch passes; one allocation either way."""
    mod = _kernel_for(g, u)
    if mod is None:
        return F.silu(g).mul_(u)
    h = torch.empty(g.shape, dtype=g.dtype, device=g.device)
    mod.silu_mul_out(g, u, h)
    return h


def silu_mul_backward_into(
    grad_h: torch.Tensor, g: torch.Tensor, u: torch.Tensor, *, grad_g: torch.Tensor, grad_u: torch.Tensor
) -> None:
    """Write d(sum(grad_h * silu(g) * u)) / dg into ``grad_g`` and / du into ``grad_u``; consumes ``grad_h``.

    ``grad_g`` and ``grad_u`` may be strided views (e.g. the two halves of an (N, 2I) buffer) and must not
    overlap the inputs; ``grad_h`` may be overwritten (the torch path leaves ``grad_h * u`` in it), so the
    caller must own it. Eager only (in-place and ``out=`` ops), no autograd through it. One pass with
    the C++ kernel where it applies, else four torch passes.
    """
    mod = _kernel_for(grad_h, g, u, grad_g, grad_u)
    if mod is not None:
        mod.silu_mul_backward_out(grad_h, g, u, grad_g, grad_u)
        return
    torch.ops.aten.silu.out(g, out=grad_u)
    grad_u.mul_(grad_h)
    grad_h.mul_(u)
    torch.ops.aten.silu_backward.grad_input(grad_h, g, grad_input=grad_g)


class SiLUMul(torch.autograd.Function):
    """``silu(g) * u`` saving only its inputs; use through :func:`silu_mul`."""

    @staticmethod
    def forward(ctx, g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(g, u)
        return silu_mul_forward(g, u)

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        # grad_h may be the caller's own tensor (e.g. ``h.backward(t)``): never written here. Functional
        # ops on it, in-place only on tensors made here, keep this traceable by torch.compile.
        g, u = ctx.saved_tensors
        need_g, need_u = ctx.needs_input_grad
        mod = _kernel_for(grad_h, g, u) if need_g and need_u else None  # none under create_graph
        if mod is not None:
            grad_g, grad_u = (torch.empty(g.shape, dtype=g.dtype, device=g.device) for _ in range(2))
            mod.silu_mul_backward_out(grad_h, g, u, grad_g, grad_u)
            return grad_g, grad_u
        grad_u = F.silu(g).mul_(grad_h) if need_u else None
        grad_g = None
        if need_g and torch.is_grad_enabled():  # create_graph: aten.silu_backward has no derivative
            s = torch.sigmoid(g)
            grad_g = grad_h * u * s * (1 + g * (1 - s))
        elif need_g:
            grad_g = torch.ops.aten.silu_backward(grad_h * u, g)
        return grad_g, grad_u


def silu_mul(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """(N, I), (N, I) -> (N, I) ``silu(g) * u`` as one autograd node (see the module docstring)."""
    return SiLUMul.apply(g, u)
