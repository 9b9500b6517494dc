"""Top-p (threshold) routing: keep the most probable experts until their mass reaches p.

Sharp router distributions stop after one expert, flat ones use several: a variable k without null
experts. Null experts may be added as well; a null pick still costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from adamoe.routing.base import LinearRouter, LinearRouterArgs, Routing
from adamoe.routing.selection import topk_with_nulls

if TYPE_CHECKING:
    from typing_extensions import Unpack


class TopPRouter(LinearRouter):
    """Keep sorted experts while the mass *before* them is < p (so at least one), at most ``max_k``."""

    def __init__(self, *, top_p: float, max_k: int | None = None, **router: Unpack[LinearRouterArgs]) -> None:
        """``top_p`` mass to reach, ``max_k`` picks at most (default E+m); ``router``: :class:`LinearRouter`'s."""
        super().__init__(**router)
        self.top_p = top_p
        self.max_k = max_k or self.num_total

    def forward(self, hidden: torch.Tensor, *, token_ids: torch.Tensor | None = None) -> Routing:
        """(T, H) -> Routing with 1..max_k picks per token (-1 pads empty slots)."""
        logits, probs = self.logits_and_probs(hidden)
        vals, idx = topk_with_nulls(probs, self.max_k, num_experts=self.num_experts)
        mass_before = torch.cumsum(vals, dim=-1) - vals
        keep = mass_before < self.top_p
        keep[:, 0] = True
        idx = torch.where(keep, idx, torch.full_like(idx, -1))
        vals = vals * keep
        # Trim columns nobody uses so downstream work scales with the real k.
        width = max(int(keep.sum(dim=-1).max()), 1) if keep.numel() else 1
        idx, vals = idx[:, :width], vals[:, :width]
        weights = self.combine_weights(vals, idx, logits)
        return self._routing(idx, weights, probs, logits)
