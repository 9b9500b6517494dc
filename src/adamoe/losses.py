"""Auxiliary router losses and the schedules of their coefficient.

- :func:`switch_load_balance` (Fedus et al.): ``N * sum_i f_i * P_i`` over all N = E+m experts.
- :func:`null_aware_load_balance` (AdaMoE eq. 6): the same, but every null expert's dispatch count is
  replaced by the mean count of the nulls, so nulls are balanced *as a group* against the true experts
  and not against each other. With m = 0 it equals the Switch loss.
- :func:`z_loss` (ST-MoE): mean squared log-partition of the router logits, for stability.

``f_i`` is normalised to sum to 1 over experts (counts / total picks), so a perfectly uniform router
gives a loss of exactly 1 for any k. Counts are taken over the *expert* axis of the (T, k) indices:
summing over the wrong axis (the top-k axis) is the known bug class these functions are tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from adamoe.routing.base import Routing, expert_counts


def _balance(counts: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    # No data-dependent branch (a host sync per router per step): with no dispatched slot the fractions
    # are 0 and the loss is an exact 0 that still depends on ``probs`` (zero gradient).
    num_total = probs.shape[-1]
    fractions = counts / counts.sum().clamp_min(1.0)
    mean_probs = probs.float().sum(dim=0) / max(probs.shape[0], 1)
    return num_total * torch.sum(fractions * mean_probs)


def switch_load_balance(probs: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Switch/GShard load-balancing loss over every expert individually (nulls included)."""
    return _balance(expert_counts(indices, probs.shape[-1]).float(), probs)


def null_aware_load_balance(probs: torch.Tensor, indices: torch.Tensor, *, num_experts: int) -> torch.Tensor:
    """AdaMoE eq. 6: nulls (experts ``num_experts..N-1``) share one averaged dispatch count."""
    counts = expert_counts(indices, probs.shape[-1]).float()
    num_null = probs.shape[-1] - num_experts
    if num_null > 0:
        counts[num_experts:] = counts[num_experts:].mean()
    return _balance(counts, probs)


def z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE router z-loss: mean over tokens of logsumexp(logits)^2."""
    if logits.numel() == 0:
        return logits.sum() * 0.0
    return torch.logsumexp(logits.float(), dim=-1).pow(2).mean()


AUX_LOSSES = ("null_aware", "switch", "none")


def routing_aux_loss(routing: Routing, kind: str = "null_aware") -> torch.Tensor:
    """The configured load-balancing loss of one layer's routing."""
    if kind == "null_aware":
        return null_aware_load_balance(routing.probs, routing.indices, num_experts=routing.num_experts)
    if kind == "switch":
        return switch_load_balance(routing.probs, routing.indices)
    if kind == "none":
        return routing.probs.sum() * 0.0
    raise ValueError(f"aux_loss: expected one of {AUX_LOSSES}, got {kind!r}")


SCHEDULES = ("constant", "step", "linear", "cosine")


@dataclass(kw_only=True)
class AuxSchedule:
    """Coefficient of the aux loss over training steps, "tight then loose" (AdaMoE's annealing).

    ``constant``: always ``start``. ``step``: ``start`` before ``boundary`` (e.g. the first epoch's
    steps), ``end`` after. ``linear`` / ``cosine``: from ``start`` at step 0 to ``end`` at
    ``total_steps``, then ``end``.
    """

    kind: str = "constant"
    start: float = 1e-2
    end: float = 1e-3
    boundary: int = 0
    total_steps: int = 1

    def validate(self) -> AuxSchedule:
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule.kind: expected one of {SCHEDULES}, got {self.kind!r}")
        if self.start < 0 or self.end < 0:
            raise ValueError(f"schedule.start/end: coefficients must be >= 0, got {self.start}, {self.end}")
        if self.kind in ("linear", "cosine") and self.total_steps < 1:
            raise ValueError(f"schedule.total_steps: expected >= 1, got {self.total_steps}")
        return self

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.start
        if self.kind == "step":
            return self.start if step < self.boundary else self.end
        frac = min(max(step / self.total_steps, 0.0), 1.0)
        if self.kind == "linear":
            return self.start + (self.end - self.start) * frac
        return self.end + (self.start - self.end) * 0.5 * (1.0 + math.cos(math.pi * frac))
