"""Stochastic experts (THOR, Zuo et al. 2022): a random expert per token in training, no router.

At evaluation the layer must be deterministic: ``eval_mode="average"`` averages all experts (weight 1/E
each, THOR's ensemble view); ``eval_mode="first"`` always uses expert 0 (cheap, one expert's FLOPs).
"""

from __future__ import annotations

import torch

from adamoe.routing.base import Router, Routing

EVAL_MODES = ("average", "first")


class StochasticRouter(Router):
    """No learned scorer: a uniformly random expert per token in training, ``eval_mode`` at evaluation."""

    def __init__(self, *, num_experts: int, eval_mode: str = "average") -> None:
        super().__init__(num_experts=num_experts)
        self.eval_mode = eval_mode
        self.top_k = 1

    def forward(self, hidden: torch.Tensor, *, token_ids: torch.Tensor | None = None) -> Routing:
        """(T, H) -> Routing: one random expert per token in training, the eval rule otherwise."""
        num_tokens, dev = hidden.shape[0], hidden.device
        uniform = torch.full((num_tokens, self.num_experts), 1.0 / self.num_experts, device=dev)
        if self.training:
            idx = torch.randint(0, self.num_experts, (num_tokens, 1), device=dev)
            weights = torch.ones(num_tokens, 1, device=dev, dtype=hidden.dtype)
        elif self.eval_mode == "average":
            idx = torch.arange(self.num_experts, device=dev).expand(num_tokens, -1).contiguous()
            weights = uniform.to(hidden.dtype)
        else:
            idx = torch.zeros(num_tokens, 1, dtype=torch.long, device=dev)
            weights = torch.ones(num_tokens, 1, device=dev, dtype=hidden.dtype)
        return self._routing(idx, weights, uniform, torch.zeros_like(uniform))
