"""The `Routing` record every router returns and every dispatcher consumes.

Conventions (see DESIGN.md):
- ``indices`` (T, k) int64: true experts are ``0..E-1``, null experts ``E..E+m-1`` and ``-1`` marks an
  empty slot (routers with a variable number of picks per token pad with it).
- ``weights`` (T, k): already normalised as configured; exactly 0 for zero-null and empty slots, so the
  dispatcher can drop those slots before any GEMM without changing the result.
- ``probs`` / ``logits`` (T, E+m): kept for the auxiliary losses and routing statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypedDict

import torch
from torch import nn

from adamoe.routing.selection import apply_null_bias, softmax_probs

NULL_TYPES = ("zero", "identity")
NORMALIZE_MODES = (0, 1, 2)


def expert_counts(indices: torch.Tensor, num_total: int) -> torch.Tensor:
    """(T, k) int64 picks -> (N,) int64: how many slots picked each of the N experts; -1 slots ignored.

    Counts run over the *expert* axis of the flat picks: summing over the top-k axis instead is the
    known bug class the load-balancing losses are tested against. A scatter-add, not ``bincount`` of the
    valid picks: both the boolean selection and ``bincount`` read a size back to the host on CUDA.
    """
    flat = indices.reshape(-1)
    counts = torch.zeros(num_total, dtype=torch.int64, device=flat.device)
    return counts.scatter_add_(0, flat.clamp(min=0), (flat >= 0).to(torch.int64))


@dataclass
class Routing:
    """Routing decision of one MoE layer for a flat batch of T tokens."""

    indices: torch.Tensor
    weights: torch.Tensor
    probs: torch.Tensor
    logits: torch.Tensor
    num_experts: int
    num_null: int = 0
    null_type: str = "zero"

    @classmethod
    def of(
        cls,
        owner: Any,
        indices: torch.Tensor,
        weights: torch.Tensor,
        probs: torch.Tensor,
        logits: torch.Tensor,
    ) -> Routing:
        """A Routing with ``owner``'s ``num_experts``, ``num_null`` and ``null_type`` (any router)."""
        return cls(
            indices=indices,
            weights=weights,
            probs=probs,
            logits=logits,
            num_experts=owner.num_experts,
            num_null=owner.num_null,
            null_type=owner.null_type,
        )

    @property
    def num_tokens(self) -> int:
        return self.indices.shape[0]

    @property
    def top_k(self) -> int:
        return self.indices.shape[1]

    def true_mask(self) -> torch.Tensor:
        """(T, k) bool: slots that route to a true expert (these are the only ones that cost FLOPs)."""
        return (self.indices >= 0) & (self.indices < self.num_experts)

    def null_mask(self) -> torch.Tensor:
        """(T, k) bool: slots that route to a null expert (empty ``-1`` slots excluded)."""
        return self.indices >= self.num_experts

    def true_experts_per_token(self) -> torch.Tensor:
        """(T,) number of true experts each token uses: the per-token load."""
        return self.true_mask().sum(dim=-1)

    def load(self) -> float:
        """Mean number of true experts per token (the paper's Load for one layer)."""
        return float(self.true_experts_per_token().float().mean()) if self.num_tokens else 0.0

    def expert_counts(self) -> torch.Tensor:
        """(E+m,) int64: how many slots chose each expert (empty slots excluded)."""
        return expert_counts(self.indices, self.num_experts + self.num_null)

    def select(self, rows: torch.Tensor) -> Routing:
        """The routing of a subset of tokens (bool mask or index over T), e.g. to drop padding."""
        return replace(
            self,
            indices=self.indices[rows],
            weights=self.weights[rows],
            probs=self.probs[rows],
            logits=self.logits[rows],
        )

    def detach(self) -> Routing:
        """The same routing with ``weights``, ``probs`` and ``logits`` cut from the autograd graph."""
        return replace(
            self, weights=self.weights.detach(), probs=self.probs.detach(), logits=self.logits.detach()
        )


def normalize_weights(
    values: torch.Tensor,
    indices: torch.Tensor,
    *,
    num_experts: int,
    normalize: int,
    null_type: str,
    logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Turn the router scores of the chosen slots into combination weights.

    ``normalize``: 2 = renormalise over the slots that contribute an output (the true experts, plus
    identity nulls), which keeps the layer's output scale equal to vanilla top-k MoE (AdaMoE option 2);
    1 = renormalise over all chosen slots, nulls included (option 1); 0 = keep raw probabilities
    (e.g. Qwen2-MoE with ``norm_topk_prob=False``). Zero-null and empty slots always get weight 0.
    A token whose picks are all zero-nulls gets all-zero weights: it bypasses the layer.

    ``logits`` (T, k), the picks' softmax logits: options 1 and 2 then renormalise as a softmax over
    them — the same weights as ``values / sum(values)``, but computed in log space. In probability space
    a router so sharp that every chosen true expert has p ~ 1e-40 (a Mo-LoRA run at step 14) gets
    0/0 gradients (NaN) through ``p / sum p``, and weights of exactly 0 once p underflows.
    """
    valid = indices >= 0
    true = valid & (indices < num_experts)
    contributes = valid if null_type == "identity" else true
    if normalize == 0:
        return values * contributes
    over = contributes if normalize == 2 else valid
    if logits is not None:
        any_over = over.any(dim=-1, keepdim=True)
        masked = torch.where(
            over, logits.float(), torch.full_like(logits, float("-inf"), dtype=torch.float32)
        )
        masked = torch.where(any_over, masked, torch.zeros_like(masked))
        return (masked.softmax(dim=-1) * (contributes & any_over)).to(values.dtype)
    denom = (values * over).sum(dim=-1, keepdim=True)
    denom = torch.where(denom > 0, denom, torch.ones_like(denom))
    return values * contributes / denom


class Router(nn.Module):
    """Base class of all routers: maps (T, H) hidden states to a :class:`Routing`.

    ``causal`` is False for routers whose decision for a token depends on later tokens
    (expert choice); such routers refuse to run in generation mode.
    """

    causal: bool = True
    needs_token_ids: bool = False

    def __init__(self, *, num_experts: int, num_null: int = 0, null_type: str = "zero") -> None:
        super().__init__()
        self.num_experts = num_experts
        self.num_null = num_null
        self.null_type = null_type

    @property
    def num_total(self) -> int:
        return self.num_experts + self.num_null

    def forward(self, hidden: torch.Tensor, *, token_ids: torch.Tensor | None = None) -> Routing:
        """(T, H) hidden states (and (T,) token ids for routers that need them) -> :class:`Routing`."""
        raise NotImplementedError

    def _routing(self, indices, weights, probs, logits) -> Routing:
        return Routing.of(self, indices, weights, probs, logits)


class LinearRouterArgs(TypedDict, total=False):
    """The keyword arguments of :class:`LinearRouter`, which its subclasses pass through unchanged.

    Why: every linear router kind (top-k, top-p, sigmoid-bias) takes the same scorer settings and adds
    only its own selection knobs; naming them once keeps the sibling constructors from drifting apart.
    ``hidden_size`` and ``num_experts`` are required (the constructor enforces it).
    """

    hidden_size: int
    num_experts: int
    num_null: int
    null_type: str
    normalize: int
    jitter: float


class LinearRouter(Router):
    """A router with a learned linear scorer over E true + m null experts (fp32 logits).

    ``jitter`` multiplies the router input by U(1-eps, 1+eps) noise in training (Switch Transformer).
    ``null_bias`` is added to the null experts' logits: the inference-time compute dial (a positive
    bias sends more picks to nulls, lowering the load without retraining).
    """

    def __init__(
        self,
        *,
        hidden_size: int,
        num_experts: int,
        num_null: int = 0,
        null_type: str = "zero",
        normalize: int = 2,
        jitter: float = 0.0,
    ) -> None:
        super().__init__(num_experts=num_experts, num_null=num_null, null_type=null_type)
        self.hidden_size = hidden_size
        self.normalize = normalize
        self.jitter = jitter
        self.null_bias = 0.0
        self.weight = nn.Parameter(torch.empty(num_experts + num_null, hidden_size))
        nn.init.normal_(self.weight, std=hidden_size**-0.5)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(T, H) -> (T, E+m) fp32 logits (input jitter in training, ``null_bias`` on the null columns)."""
        if self.training and self.jitter > 0:
            noise = torch.empty_like(hidden).uniform_(1.0 - self.jitter, 1.0 + self.jitter)
            hidden = hidden * noise
        logits = nn.functional.linear(hidden.float(), self.weight.float())
        return apply_null_bias(logits, self.num_experts, self.null_bias)

    def logits_and_probs(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, H) -> ((T, E+m) fp32 logits with the dial applied, (T, E+m) softmax probabilities)."""
        logits = self.compute_logits(hidden)
        return logits, softmax_probs(logits)

    def combine_weights(
        self, values: torch.Tensor, indices: torch.Tensor, logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Combination weights of the chosen slots under this router's normalisation and null type.

        ``logits``: the (T, E+m) softmax logits the picks came from, for the log-space renormalisation
        of :func:`normalize_weights` (pass them for softmax routers; sigmoid scores stay as they are).
        """
        picked = None if logits is None else logits.gather(1, indices.clamp(min=0))
        return normalize_weights(
            values,
            indices,
            num_experts=self.num_experts,
            normalize=self.normalize,
            null_type=self.null_type,
            logits=picked,
        )
