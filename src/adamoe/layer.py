"""MoELayer = router + grouped experts + dispatch (+ optional always-on shared expert).

The layer is a :class:`~adamoe.routing.source.RoutingSource`: it publishes each :class:`Routing`
(``last_routing``, still attached to the graph in training so the trainer can add aux losses, and
``routing_callbacks``, where statistics recorders attach). The HF adapters derive from the same class,
so losses and statistics treat both alike.

At decode (inference, CPU, a few tokens) a softmax top-k router and SwiGLU experts run as ONE kernel
call, routing included (``SwiGLUExperts.forward_decode_routed``); the Routing it returns is published
like the router's, so recorders see the same picks. ``fused_decode = False`` turns that path off, and a
router with forward hooks or pre-hooks (its own or global ones) keeps the router + dispatch path: the
fused call never calls ``self.router``, so its hooks would silently not run.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as nn_module

from adamoe.dispatch import dispatch
from adamoe.routing.base import Router, Routing
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

    fused_decode: bool = True
    """False: always router + dispatch (tests and benches compare the two). A class default, so a layer
    pickled before the attribute existed loads with it."""

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
        fused = self._fused_decode(flat) if self.fused_decode and not self._router_hooked() else None
        if fused is None:
            routing = self.router(flat, token_ids=token_ids)
            out = dispatch(flat, routing, self.experts)
        else:
            out, routing = fused
        if self.shared_expert is not None:
            out = out + self.shared_expert(flat)
        self.publish(routing)
        return out.reshape(shape)

    def _router_hooked(self) -> bool:
        """Whether calling ``self.router`` would run forward hooks or pre-hooks (its own or global ones)."""
        own = self.router._forward_hooks or self.router._forward_pre_hooks
        return bool(own or nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks)

    def _fused_decode(self, flat: torch.Tensor) -> tuple[torch.Tensor, Routing] | None:
        """(T, H) -> ((T, H) routed output, its Routing) from one kernel call, or None (not taken).

        Taken when the router states its rule as data (``decode_rule``: plain softmax top-k, see
        :meth:`~adamoe.routing.topk.TopKRouter.decode_rule`) and the experts run it
        (``forward_decode_routed``: inference at decode on CPU). Any other router kind (expert choice,
        hash, sigmoid + bias, top-p, ...) or expert module takes the router + dispatch path.
        """
        rule_of = getattr(self.router, "decode_rule", None)
        run = getattr(self.experts, "forward_decode_routed", None)
        rule = rule_of() if rule_of is not None and run is not None else None
        done = run(flat, rule) if rule is not None else None
        if done is None:
            return None
        return done.out, Routing.of(self.router, done.indices, done.weights, done.probs, done.logits)
