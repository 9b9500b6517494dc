"""Top-k softmax routing with optional null experts (AdaMoE).

m = 0 is GShard/Mixtral top-k; k = 1, m = 0 is Switch. With m > 0 null experts and a raised k, each
token uses a *variable* number of true experts: picks that land on nulls cost no FLOPs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from adamoe.routing.base import LinearRouter, LinearRouterArgs, Routing
from adamoe.routing.selection import topk_with_nulls

if TYPE_CHECKING:
    from typing_extensions import Unpack


class TopKRouter(LinearRouter):
    """Softmax over E+m logits, then the k most probable experts (true or null)."""

    def __init__(self, *, top_k: int, **router: Unpack[LinearRouterArgs]) -> None:
        """``top_k`` picks per token; ``router``: the :class:`LinearRouter` settings."""
        super().__init__(**router)
        self.top_k = top_k

    def forward(self, hidden: torch.Tensor, *, token_ids: torch.Tensor | None = None) -> Routing:
        """(T, H) -> Routing with (T, k) picks over E true + m null experts."""
        logits, probs = self.logits_and_probs(hidden)
        top_vals, top_idx = topk_with_nulls(probs, self.top_k, num_experts=self.num_experts)
        weights = self.combine_weights(top_vals, top_idx, logits)
        return self._routing(top_idx, weights, probs, logits)
