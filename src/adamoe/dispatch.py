"""Permute tokens by expert, drop null and empty slots, run grouped experts, un-permute with weights.

The only place where routing turns into compute. Slots routed to null experts (or left empty by
variable-k routers) are removed *before* the expert GEMMs, so AdaMoE's lower load is a lower wall
clock and not just a lower FLOP count. Null experts have no module: a zero null's slot weight is 0 and the
slot is dropped; an identity null adds ``weight * x`` here. The independent reference is the per-token,
per-slot loop written from scratch in ``tests/test_dispatch.py``.
"""

from __future__ import annotations

from typing import Protocol

import torch

from adamoe.routing.base import Routing


class GroupedExperts(Protocol):
    num_experts: int

    def forward_grouped(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor: ...


def plan(routing: Routing) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Sort the true-expert slots by expert.

    Returns ``slot`` (flat indices into the (T*k) slots, grouped by expert, stable), ``token`` (the
    token of each such slot) and ``counts`` (rows per true expert).
    """
    num_experts, k = routing.num_experts, routing.top_k
    flat = routing.indices.reshape(-1)
    key = torch.where((flat >= 0) & (flat < num_experts), flat, torch.full_like(flat, num_experts))
    key_sorted, order = torch.sort(key, stable=True)
    counts_all = torch.bincount(key_sorted, minlength=num_experts + 1)
    counts = counts_all[:num_experts].tolist()
    slot = order[: sum(counts)]
    return slot, slot // k, counts


def dispatch(hidden: torch.Tensor, routing: Routing, experts: GroupedExperts) -> torch.Tensor:
    """(T, H) hidden -> (T, H) weighted sum of the chosen experts' outputs (identity nulls included)."""
    slot, token, counts = plan(routing)
    rows = hidden.index_select(0, token)
    expert_out = experts.forward_grouped(rows, counts)
    slot_weights = routing.weights.reshape(-1).index_select(0, slot).to(expert_out.dtype)
    out = torch.zeros_like(hidden).index_add_(0, token, expert_out * slot_weights.unsqueeze(1))
    if routing.null_type == "identity" and routing.num_null > 0:
        identity_weight = (routing.weights * routing.null_mask()).sum(dim=-1, keepdim=True)
        out = out + identity_weight.to(hidden.dtype) * hidden
    return out
