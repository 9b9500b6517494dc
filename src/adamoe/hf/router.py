"""The router an AdaMoE conversion puts in each MoE block: E true + m null experts, the family's own tuple.

:func:`adamoe.hf.convert.convert` swaps one in for every block's ``gate``; this module holds the routing
itself (scoring, selection, combination weights for every supported family), the conversion module
the model surgery around it. :class:`AdaMoERouter` is also importable from :mod:`adamoe.hf.convert`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from adamoe.hf.families import FamilySpec
from adamoe.hf.gate2 import init_gate2
from adamoe.routing.base import Routing, normalize_weights
from adamoe.routing.selection import (
    apply_null_bias,
    sigmoid_bias_select,
    softmax_probs,
    topk_with_nulls,
    true_topk_mass,
)
from adamoe.routing.source import RoutingSource

__all__ = ["AdaMoERouter"]


class AdaMoERouter(RoutingSource):
    """Router over E true + m null experts that speaks the replaced HF router's tuple convention.

    Publishes each decision as a :class:`~adamoe.routing.base.Routing` (``last_routing``, graph-attached
    in training for the aux losses, and ``routing_callbacks``) so :class:`adamoe.stats.RoutingRecorder`
    and :mod:`adamoe.losses` work on converted models. Gradients reach ``weight`` and ``gate2`` through
    the combination weights the experts are multiplied by (with option 2 and zero nulls the null logits
    cancel out of the weights, so ``gate2`` learns from the aux loss). ``null_bias`` is the compute dial
    of :mod:`adamoe.eval.dial`, as on :class:`~adamoe.routing.base.LinearRouter`.
    """

    def __init__(
        self,
        *,
        original: nn.Module,
        spec: FamilySpec,
        num_null: int,
        top_k: int,
        null_type: str,
        normalize: int,
        gate2_init: str,
        base_top_k: int | None = None,
        generator: torch.Generator | None = None,
        input_mean: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.family = spec.model_type
        self.scoring = spec.scoring
        self.selection = spec.selection
        self.logits_fp32 = spec.logits_fp32
        self.weights_to_logits_dtype = spec.weights_to_logits_dtype
        self.topk_sorted = spec.topk_sorted
        self.scaled = spec.scaled
        self.weight = original.weight
        self.num_experts = int(self.weight.shape[0])
        self.hidden_dim = int(self.weight.shape[1])
        self.num_null = num_null
        self.top_k = top_k
        self.base_top_k = top_k if base_top_k is None else base_top_k
        self.null_type = null_type
        self.normalize = normalize
        self.routed_scaling_factor = float(getattr(original, "routed_scaling_factor", 1.0))
        self.topk_method = getattr(original, "topk_method", "greedy")
        self.num_group = getattr(original, "num_group", None)
        self.topk_group = getattr(original, "topk_group", None)
        if num_null > 0:
            self.gate2 = nn.Parameter(init_gate2(self.weight, num_null, gate2_init, generator, input_mean))
        else:
            self.register_parameter("gate2", None)
        if spec.scoring == "sigmoid":
            self.register_buffer("e_score_correction_bias", original.e_score_correction_bias)
            if num_null > 0:
                # Selection-only bias of the nulls, so aux-loss-free balancing can steer them too.
                bias = torch.zeros(num_null, dtype=torch.float32, device=self.weight.device)
                self.register_buffer("null_score_correction_bias", bias)

    @property
    def group_limited(self) -> bool:
        return self.selection == "deepseek_v3" or (
            self.selection == "deepseek_v2" and self.topk_method == "group_limited_greedy"
        )

    def eligible_experts(self) -> int:
        """Experts a token can pick: group-limited routing restricts the true ones, never the nulls."""
        if not self.group_limited:
            return self.num_experts + self.num_null
        return self.topk_group * (self.num_experts // self.num_group) + self.num_null

    def extra_repr(self) -> str:
        return (
            f"family={self.family}, num_experts={self.num_experts}, num_null={self.num_null}, "
            f"top_k={self.top_k}, null_type={self.null_type}, normalize={self.normalize}"
        )

    @property
    def groups(self) -> tuple[int, int] | None:
        """(num_group, topk_group) when selection is group-limited, else None."""
        return (self.num_group, self.topk_group) if self.group_limited else None

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(T, H) -> (T, E+m) router logits (fp32 where the family computes them so) with the dial applied."""
        weight = (
            self.weight if self.gate2 is None else torch.cat([self.weight, self.gate2.to(self.weight.dtype)])
        )
        if self.logits_fp32:
            logits = F.linear(hidden.float(), weight.float())
        else:
            logits = F.linear(hidden, weight)
        return apply_null_bias(logits, self.num_experts, self.null_bias)

    def select(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(T, E+m) logits -> ((T, k) indices, (T, k) scores of the picks, (T, E+m) probs), as the family's
        router would compute them (:mod:`adamoe.routing.selection`)."""
        if self.scoring == "sigmoid":
            bias = self.e_score_correction_bias
            if self.num_null > 0:
                bias = torch.cat([bias, self.null_score_correction_bias.to(bias.dtype)])
            return sigmoid_bias_select(
                logits, self.top_k, num_experts=self.num_experts, bias=bias, groups=self.groups, sorted=False
            )
        probs = softmax_probs(logits)
        vals, idx = topk_with_nulls(
            probs, self.top_k, num_experts=self.num_experts, groups=self.groups, sorted=self.topk_sorted
        )
        return idx, vals, probs

    def combine(self, logits: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
        """(T, k) combination weights of the picks under ``normalize`` (before ``routed_scaling_factor``).

        Raw-weight families (``normalize=0``: Qwen2-MoE ``norm_topk_prob=False``, DeepSeek-V2) with nulls:
        softmax probabilities over E+m are smaller than over E (0.355 instead of 0.710 for a top-2 pick),
        which would shrink the layer's output. The rule kept here: the picks are weighted as in option 2
        (renormalised over the slots that contribute) and scaled by the mass the *original* top-k would
        have had (softmax over the E true logits, top ``base_top_k``), so every token's true-expert weights
        sum to exactly what the unconverted model gives it, whatever the number of true picks. Sigmoid
        scores do not depend on the other experts and stay raw; m = 0 stays raw and exact.
        """
        picked = logits.gather(1, idx.clamp(min=0)) if self.scoring == "softmax" else None
        if self.normalize == 0 and self.num_null > 0 and self.scoring == "softmax":
            option2 = normalize_weights(
                vals, idx, num_experts=self.num_experts, normalize=2, null_type=self.null_type, logits=picked
            )
            mass = true_topk_mass(logits, self.base_top_k, num_experts=self.num_experts, groups=self.groups)
            return option2 * mass
        return normalize_weights(
            vals,
            idx,
            num_experts=self.num_experts,
            normalize=self.normalize,
            null_type=self.null_type,
            logits=picked,
        )

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., H) -> the family's ((T, E+m) logits, (T, k) weights, (T, k) indices); publishes a Routing."""
        hidden = hidden_states.reshape(-1, self.hidden_dim)
        logits = self.compute_logits(hidden)
        idx, vals, probs = self.select(logits)
        weights = self.combine(logits, idx, vals)
        if self.scaled:
            weights = weights * self.routed_scaling_factor
        if self.weights_to_logits_dtype:
            weights = weights.to(logits.dtype)
        self.publish(Routing.of(self, idx, weights, probs, logits))
        return logits, weights, idx
