"""Pure selection functions shared by every router: ours, the converted HF router, Mo-LoRA.

Scores cover E true experts followed by m null experts (columns ``E..E+m-1``). Two rules hold everywhere:
the compute dial (:func:`apply_null_bias`) only shifts the null columns, and group-limited routing
(DeepSeek-V2 ``group_limited_greedy``, DeepSeek-V3) only restricts the *true* experts: nulls are always
eligible, so a token limited to few groups can still spend its remaining picks on nulls.
"""

from __future__ import annotations

import torch

__all__ = [
    "GROUP_SCORES",
    "apply_null_bias",
    "group_limited_mask",
    "mask_true_experts",
    "sigmoid_bias_select",
    "softmax_probs",
    "topk_with_nulls",
    "true_topk_mass",
]

GROUP_SCORES = ("max", "top2_sum")
"""How a group of true experts is scored: DeepSeek-V2 takes its best expert, V3 the sum of its best two."""

Groups = tuple[int, int]
"""(num_group, topk_group): E true experts in ``num_group`` equal groups, each token keeps ``topk_group``."""


def apply_null_bias(logits: torch.Tensor, num_experts: int, bias: float) -> torch.Tensor:
    """(T, E+m) logits -> (T, E+m) with ``bias`` added to the m null columns (the compute dial).

    A positive bias sends picks to nulls (lower load), a negative one back to true experts. Returns the
    input itself when there is nothing to shift, so bias 0 is bit-exact.
    """
    if not bias or logits.shape[-1] == num_experts:
        return logits
    return torch.cat([logits[:, :num_experts], logits[:, num_experts:] + bias], dim=-1)


def softmax_probs(logits: torch.Tensor) -> torch.Tensor:
    """(T, E+m) logits -> (T, E+m) float32 softmax (what every softmax-scored family selects from)."""
    return torch.softmax(logits, dim=-1, dtype=torch.float32)


def group_limited_mask(scores: torch.Tensor, *, groups: Groups, group_score: str) -> torch.Tensor:
    """(T, E) true-expert scores -> (T, E) bool: experts inside each token's ``topk_group`` best groups.

    ``group_score``: "max" (DeepSeek-V2 ``group_limited_greedy``) or "top2_sum" (DeepSeek-V3).
    """
    if group_score not in GROUP_SCORES:
        raise ValueError(f"group_score: expected one of {GROUP_SCORES}, got {group_score!r}")
    num_group, topk_group = groups
    num_tokens, num_experts = scores.shape
    per_group = num_experts // num_group
    grouped = scores.reshape(num_tokens, num_group, per_group)
    if group_score == "max":
        ranked = grouped.max(dim=-1).values
    else:
        ranked = grouped.topk(2, dim=-1)[0].sum(dim=-1)
    group_idx = torch.topk(ranked, k=topk_group, dim=-1, sorted=False)[1]
    mask = torch.zeros_like(ranked).scatter_(1, group_idx, 1)
    return mask.unsqueeze(-1).expand(-1, num_group, per_group).reshape(num_tokens, num_experts).bool()


def mask_true_experts(
    scores: torch.Tensor, num_experts: int, eligible: torch.Tensor, fill: float
) -> torch.Tensor:
    """(T, E+m) scores with ineligible true experts (``eligible`` (T, E) False) set to ``fill``; nulls kept."""
    true = scores[:, :num_experts].masked_fill(~eligible, fill)
    return true if scores.shape[-1] == num_experts else torch.cat([true, scores[:, num_experts:]], dim=-1)


def topk_with_nulls(
    probs: torch.Tensor,
    k: int,
    *,
    num_experts: int,
    groups: Groups | None = None,
    sorted: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax top-k over E true + m null experts: (T, E+m) probs -> ((T, k) values, (T, k) int64 indices).

    With ``groups`` the true experts outside each token's best groups (scored by their best probability,
    DeepSeek-V2 ``group_limited_greedy``) are excluded; nulls never are.
    """
    choice = probs
    if groups is not None:
        eligible = group_limited_mask(probs[:, :num_experts], groups=groups, group_score="max")
        choice = mask_true_experts(probs, num_experts, eligible, 0.0)
    return torch.topk(choice, k, dim=-1, sorted=sorted)


def sigmoid_bias_select(
    logits: torch.Tensor,
    k: int,
    *,
    num_experts: int,
    bias: torch.Tensor,
    groups: Groups | None = None,
    sorted: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sigmoid scores, top-k chosen on score + selection ``bias`` (E+m,) (DeepSeek-V3 aux-loss-free).

    The bias steers only *which* experts are picked; the returned values are the unbiased scores.
    ``groups`` restricts the true experts to each token's best groups (scored by the sum of their two best
    biased scores); nulls stay eligible. Returns ((T, k) indices, (T, k) scores of the picks,
    (T, E+m) scores normalised to sum 1 per token, the ``probs`` of a :class:`Routing`).
    """
    scores = logits.sigmoid()
    choice = scores.detach() + bias
    if groups is not None:
        eligible = group_limited_mask(choice[:, :num_experts], groups=groups, group_score="top2_sum")
        choice = mask_true_experts(choice, num_experts, eligible, float("-inf"))
    idx = torch.topk(choice, k, dim=-1, sorted=sorted)[1]
    return idx, scores.gather(1, idx), scores / scores.sum(dim=-1, keepdim=True)


def true_topk_mass(
    logits: torch.Tensor, k: int, *, num_experts: int, groups: Groups | None = None
) -> torch.Tensor:
    """(T, E+m) logits -> (T, 1) float32: the probability mass the original top-``k`` (nulls absent) keeps.

    The softmax runs over the E true logits only, as in the model before conversion; raw-weight families
    (:func:`adamoe.routing.base.normalize_weights` mode 0) use it to keep their output scale with nulls.
    """
    probs = softmax_probs(logits[:, :num_experts])
    vals, _ = topk_with_nulls(probs, k, num_experts=num_experts, groups=groups)
    return vals.sum(dim=-1, keepdim=True)
