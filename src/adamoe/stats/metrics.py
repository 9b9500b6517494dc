"""Per-token routing metrics (sharpness, router entropy) and the per-layer FLOPs arithmetic.

``router_entropy`` is the entropy of the *router's* distribution over E+m experts; it is named so to keep
it apart from the entropy of an answer distribution (:mod:`adamoe.rbench.metrics`).
"""

from __future__ import annotations

import torch

__all__ = ["SHARPNESS_BINS", "experts_to_mass", "flops_report", "router_entropy"]

SHARPNESS_BINS = ("1", "2", "3", "4+")


def experts_to_mass(probs: torch.Tensor, num_experts: int, mass: float = 0.5) -> torch.Tensor:
    """(T, E+m) router probabilities -> (T,) int64: how many of the most probable *true* experts it takes
    to reach ``mass`` of the probability over true experts (AdaMoE Fig. 3). Nulls are excluded so models
    with and without null experts are compared on the same footing."""
    p = probs[:, :num_experts].float()
    p = p / p.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    sorted_p = torch.sort(p, dim=-1, descending=True).values
    before = torch.cumsum(sorted_p, dim=-1) - sorted_p
    return (before < mass).sum(dim=-1)


def router_entropy(probs: torch.Tensor) -> torch.Tensor:
    """(T, E+m) router probabilities -> (T,) float32 entropy in nats over all E+m experts."""
    p = probs.float().clamp_min(1e-12)
    return -(probs.float() * p.log()).sum(dim=-1)


def flops_report(
    *, load: float, baseline_k: int, hidden_size: int, intermediate_size: int, num_experts: int, num_null: int
) -> dict[str, float]:
    """Expert and router FLOPs per token per layer vs the top-k baseline (router cost shown apart)."""
    expert = 2 * 3 * hidden_size * intermediate_size
    return {
        "expert_flops": load * expert,
        "baseline_expert_flops": baseline_k * expert,
        "expert_flops_pct": 100.0 * load / baseline_k,
        "router_flops": 2 * hidden_size * (num_experts + num_null),
        "baseline_router_flops": 2 * hidden_size * num_experts,
    }
