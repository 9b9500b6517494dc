"""Sigmoid scores with a per-expert selection bias (DeepSeek-V3 aux-loss-free balancing).

The bias only shifts *which* experts are selected, never the combination weights. After each training
forward it moves by ``bias_update_rate`` towards balance: overloaded experts down, underloaded up.
"""

from __future__ import annotations

import torch

from adamoe.routing.base import LinearRouter, Routing
from adamoe.routing.selection import sigmoid_bias_select


class SigmoidBiasRouter(LinearRouter):
    def __init__(
        self,
        *,
        hidden_size: int,
        num_experts: int,
        top_k: int,
        num_null: int = 0,
        null_type: str = "zero",
        normalize: int = 2,
        bias_update_rate: float = 1e-3,
    ) -> None:
        super().__init__(
            hidden_size=hidden_size,
            num_experts=num_experts,
            num_null=num_null,
            null_type=null_type,
            normalize=normalize,
        )
        self.top_k = top_k
        self.bias_update_rate = bias_update_rate
        self.register_buffer("selection_bias", torch.zeros(num_experts + num_null))

    def forward(self, hidden: torch.Tensor, *, token_ids: torch.Tensor | None = None) -> Routing:
        """(T, H) -> Routing; picks on sigmoid + ``selection_bias``, weights from the unbiased scores."""
        logits = self.compute_logits(hidden)
        idx, vals, probs = sigmoid_bias_select(
            logits, self.top_k, num_experts=self.num_experts, bias=self.selection_bias
        )
        weights = self.combine_weights(vals, idx)
        if self.training:
            self.update_bias(idx)
        return self._routing(idx, weights, probs, logits)

    @torch.no_grad()
    def update_bias(self, indices: torch.Tensor) -> None:
        counts = torch.bincount(indices.reshape(-1), minlength=self.num_total).float()
        self.selection_bias += self.bias_update_rate * torch.sign(counts.mean() - counts)
