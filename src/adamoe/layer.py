"""MoELayer = router + grouped experts + dispatch (+ optional always-on shared expert).

The layer is a :class:`~adamoe.routing.source.RoutingSource`: it publishes each :class:`Routing`
(``last_routing``, still attached to the graph in training so the trainer can add aux losses, and
``routing_callbacks``, where statistics recorders attach). The HF adapters derive from the same class,
so losses and statistics treat both alike.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from adamoe.dispatch import dispatch
from adamoe.routing.base import Router
from adamoe.routing.source import RoutingSource


class SharedExpert(nn.Module):
    """Dense SwiGLU applied to every token beside the routed experts (DeepSeek/Qwen2-MoE style).

    ``gated`` adds Qwen2-MoE's scalar sigmoid gate per token.
    """

    def __init__(self, *, hidden_size: int, intermediate_size: int, gated: bool = False) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(hidden_size, 2 * intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self.gate = nn.Linear(hidden_size, 1, bias=False) if gated else None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(T, H) -> (T, H) dense SwiGLU output (gated per token when ``gated``)."""
        g, u = self.gate_up_proj(hidden).chunk(2, dim=-1)
        out = self.down_proj(F.silu(g) * u)
        if self.gate is not None:
            out = torch.sigmoid(self.gate(hidden)) * out
        return out


class MoELayer(RoutingSource):
    """Router + experts (+ shared expert) over (..., H) hidden states; publishes its routing."""

    def __init__(
        self,
        *,
        router: Router,
        experts: nn.Module,
        shared_expert: SharedExpert | None = None,
        generation: bool = False,
    ) -> None:
        super().__init__()
        if generation and not router.causal:
            raise ValueError(
                f"router: {type(router).__name__} is non-causal and cannot be used for generation"
            )
        self.router = router
        self.experts = experts
        self.shared_expert = shared_expert
        self.generation = generation

    @property
    def num_null(self) -> int:
        return self.router.num_null

    def forward(self, hidden: torch.Tensor, *, token_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(..., H) hidden states -> (..., H) layer output; ``token_ids`` (...,) for hash routing."""
        shape = hidden.shape
        flat = hidden.reshape(-1, shape[-1])
        routing = self.router(flat, token_ids=token_ids)
        out = dispatch(flat, routing, self.experts)
        if self.shared_expert is not None:
            out = out + self.shared_expert(flat)
        self.publish(routing)
        return out.reshape(shape)
