"""Hash routing (Roller et al. 2021): a fixed random map token id -> expert, no learned router.

The map is drawn once from a seeded generator and stored as a buffer so it is saved with the model.
Needs the token ids of the flat batch (``token_ids`` argument).
"""

from __future__ import annotations

import torch

from adamoe.routing.base import Router, Routing


class HashRouter(Router):
    """One expert per token, weight 1. probs are one-hot so statistics still apply."""

    needs_token_ids = True

    def __init__(self, *, num_experts: int, vocab_size: int, seed: int = 0) -> None:
        super().__init__(num_experts=num_experts)
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("table", torch.randint(0, num_experts, (vocab_size,), generator=gen))
        self.top_k = 1

    def forward(self, hidden: torch.Tensor, *, token_ids: torch.Tensor | None = None) -> Routing:
        """(T, H) hidden states and (T,) token ids -> Routing with each token's fixed expert."""
        if token_ids is None:
            raise ValueError("token_ids: hash routing needs the token ids of the batch, got None")
        token_ids = token_ids.reshape(-1)
        if token_ids.shape[0] != hidden.shape[0]:
            raise ValueError(
                f"token_ids: expected {hidden.shape[0]} ids for the flat batch, got {token_ids.shape[0]}"
            )
        if int(token_ids.max()) >= self.table.shape[0] or int(token_ids.min()) < 0:
            raise ValueError(f"token_ids: ids must lie in [0, {self.table.shape[0]}) (router vocab_size)")
        idx = self.table[token_ids].unsqueeze(1)
        probs = torch.nn.functional.one_hot(idx[:, 0], self.num_experts).float()
        weights = torch.ones(idx.shape, dtype=hidden.dtype, device=hidden.device)
        return self._routing(idx, weights, probs, torch.zeros_like(probs))
