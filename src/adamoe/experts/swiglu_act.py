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

Eager torch has no one-pass op for either direction, so the forward stays two passes (``silu`` into
the new ``h``, then ``mul_`` in place) and the backward four; a single pass each (read 2 / write 1 forward,
read 3 / write 2 backward: the limit's element-wise model, :mod:`adamoe.bench.limit`) needs a compiled
kernel (``torch.compile`` or C++). Shapes: ``g``, ``u``, ``h`` and the gradients are (N, I).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["SiLUMul", "silu_mul", "silu_mul_backward_into", "silu_mul_forward"]


def silu_mul_forward(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """(N, I), (N, I) -> new contiguous (N, I) ``silu(g) * u`` (two passes, one allocation)."""
    return F.silu(g).mul_(u)


def silu_mul_backward_into(
    grad_h: torch.Tensor, g: torch.Tensor, u: torch.Tensor, *, grad_g: torch.Tensor, grad_u: torch.Tensor
) -> None:
    """Write d(sum(grad_h * silu(g) * u)) / dg into ``grad_g`` and / du into ``grad_u``; consumes ``grad_h``.

    ``grad_g`` and ``grad_u`` may be strided views (e.g. the two halves of an (N, 2I) buffer); ``grad_h``
    is overwritten (it ends as ``grad_h * u``), so the caller must own it. Eager only (in-place and
    ``out=`` ops), no autograd through it.
    """
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
