"""Expert-choice routing (Zhou et al. 2022): each expert takes its top-c tokens.

NON-CAUSAL: which tokens an expert takes depends on every token in the batch, later ones included,
so a token's output can change when future tokens are appended. It is refused in generation mode
(``MoELayer(generation=True)``) and by the HF adapters for decoding.
"""

from __future__ import annotations

import math

import torch

from adamoe.routing.base import LinearRouter, Routing


class ExpertChoiceRouter(LinearRouter):
    """Capacity c = ceil(T * k * capacity_factor / E) tokens per expert; weights are the softmax probs."""

    causal = False

    def __init__(
        self, *, hidden_size: int, num_experts: int, top_k: int = 2, capacity_factor: float = 1.0
    ) -> None:
        super().__init__(hidden_size=hidden_size, num_experts=num_experts)
        self.top_k = top_k
        self.capacity_factor = capacity_factor

    def capacity(self, num_tokens: int) -> int:
        """Tokens each expert takes from a batch of T = ``num_tokens``: ceil(T * k * factor / E), at most T."""
        return min(num_tokens, math.ceil(num_tokens * self.top_k * self.capacity_factor / self.num_experts))

    def forward(self, hidden: torch.Tensor, *, token_ids: torch.Tensor | None = None) -> Routing:
        """(T, H) -> Routing with a variable number of picks per token (-1 pads empty slots)."""
        logits, probs = self.logits_and_probs(hidden)
        num_tokens = probs.shape[0]
        cap = self.capacity(num_tokens)
        chosen = torch.zeros_like(probs, dtype=torch.bool)
        if cap > 0:
            top_tokens = torch.topk(probs, cap, dim=0).indices  # (cap, E)
            chosen.scatter_(0, top_tokens, True)
        experts = torch.arange(self.num_experts, device=probs.device).expand_as(probs)
        keyed = torch.where(chosen, experts, torch.full_like(experts, self.num_experts))
        keyed, _ = torch.sort(keyed, dim=-1)
        width = max(int(chosen.sum(dim=-1).max()), 1) if num_tokens else 1
        idx = keyed[:, :width]
        valid = idx < self.num_experts
        idx = torch.where(valid, idx, torch.full_like(idx, -1))
        weights = torch.gather(probs, 1, idx.clamp(min=0)) * valid
        return self._routing(idx, weights, probs, logits)
