"""Top-k softmax routing with optional null experts (AdaMoE).

m = 0 is GShard/Mixtral top-k; k = 1, m = 0 is Switch. With m > 0 null experts and a raised k, each
token uses a *variable* number of true experts: picks that land on nulls cost no FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from adamoe.routing.base import NORMALIZE_MODES, NULL_TYPES, LinearRouter, LinearRouterArgs, Routing
from adamoe.routing.selection import topk_with_nulls

__all__ = ["TopKRouter", "TopKRule"]

if TYPE_CHECKING:
    from typing_extensions import Unpack


@dataclass(frozen=True, kw_only=True)
class TopKRule:
    """:class:`TopKRouter`'s whole routing rule as data, for a kernel that routes by itself
    (:func:`adamoe.experts.kernels.moe_decode_routed`): (E+m, H) ``weight`` (its logits ``x @ weight.T``
    in fp32, ``null_bias`` on the m null columns), softmax, ``top_k`` picks, the weights of
    :func:`~adamoe.routing.base.normalize_weights` with ``normalize`` and ``identity_nulls`` (null type
    identity, else zero)."""

    weight: torch.Tensor
    num_experts: int
    top_k: int
    normalize: int
    identity_nulls: bool
    null_bias: float


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

    def decode_rule(self) -> TopKRule | None:
        """This router's rule for a fused decode kernel, or None where the kernel would differ from
        :meth:`forward`: input jitter (training with ``jitter`` > 0), an unknown normalisation or null
        type, ``top_k`` > E+m, or a subclass (which may change the rule; it opts in by overriding this).
        Picks can differ from :meth:`forward` at near-ties, not only exact ones: the kernel sums each
        logit's dot product in its own (blocked) order, BLAS in another, so two probabilities within fp32
        round-off of each other at the k-th place can swap; at an exact tie the kernel takes the lower
        index, ``torch.topk`` an unspecified one. Outputs then differ by more than round-off."""
        if type(self) is not TopKRouter or (self.training and self.jitter > 0):
            return None
        if self.normalize not in NORMALIZE_MODES or self.null_type not in NULL_TYPES:
            return None
        if not 1 <= self.top_k <= self.num_total:
            return None
        return TopKRule(
            weight=self.weight,
            num_experts=self.num_experts,
            top_k=self.top_k,
            normalize=self.normalize,
            identity_nulls=self.null_type == "identity",
            null_bias=float(self.null_bias),
        )
