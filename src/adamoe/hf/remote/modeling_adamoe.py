"""AdaMoE causal LMs (null experts) for ``trust_remote_code=True``; needs only torch and transformers.

Each class is the family's own transformers causal LM with two changes in every sparse MoE block:

- ``block.gate`` scores E true + m null experts (weights ``gate.weight`` (E, H) and ``gate.gate2``
  (m, H); nulls are numbered E..E+m-1) and picks the top k as the family does: softmax over all E+m
  logits (Mixtral, Qwen, OLMoE, DeepSeek-V2), or sigmoid scores with a selection-only bias (DeepSeek-V3,
  ``e_score_correction_bias`` plus ``null_score_correction_bias``); DeepSeek's group-limited routing
  restricts the true experts to each token's best groups, never the nulls. The picks are weighted as
  recorded in ``config.adamoe["normalize"]``: 2 = renormalised over the picks that contribute (true
  experts, plus identity nulls), 1 = over all picks, 0 = raw, except that softmax families with nulls
  rescale the raw weights to the mass the original top-``base_top_k`` had over the E true logits.
- ``block.experts`` runs only the true experts a token picked (zero nulls contribute nothing, identity
  nulls add ``weight * x``), in a loop over the experts that received tokens.

This reproduces ``adamoe.hf`` (its ``AdaMoERouter`` and "adamoe" experts implementation) for inference.
Written by ``adamoe.hf.export_remote``; the weights beside it are in the runtime layout.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    DeepseekV2ForCausalLM,
    DeepseekV3ForCausalLM,
    MixtralForCausalLM,
    OlmoeForCausalLM,
    Qwen2MoeForCausalLM,
    Qwen3MoeForCausalLM,
)
from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Moe
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3MoE
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock
from transformers.models.olmoe.modeling_olmoe import OlmoeSparseMoeBlock
from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock
from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeSparseMoeBlock

from .configuration_adamoe import (
    AdaMoEDeepseekV2Config,
    AdaMoEDeepseekV3Config,
    AdaMoEMixtralConfig,
    AdaMoEOlmoeConfig,
    AdaMoEQwen2MoeConfig,
    AdaMoEQwen3MoeConfig,
)

__all__ = [
    "AdaMoEDeepseekV2ForCausalLM",
    "AdaMoEDeepseekV3ForCausalLM",
    "AdaMoEMixtralForCausalLM",
    "AdaMoEOlmoeForCausalLM",
    "AdaMoEQwen2MoeForCausalLM",
    "AdaMoEQwen3MoeForCausalLM",
]

#: How each family's router differs from plain softmax top-k (sorted, weights kept in fp32).
#: cast: weights cast to the logits dtype; fp32: logits computed in fp32; unsorted: topk(sorted=False);
#: scaled: times routed_scaling_factor; sigmoid: DeepSeek-V3 scoring; groups: group-limited selection
#: ("always", or only with topk_method "group_limited_greedy").
FAMILIES: dict[str, dict[str, Any]] = {
    "mixtral": {},
    "qwen2_moe": {"cast": True},
    "qwen3_moe": {"cast": True},
    "olmoe": {"cast": True},
    "deepseek_v2": {"fp32": True, "unsorted": True, "scaled": True, "groups": "group_limited_greedy"},
    "deepseek_v3": {"fp32": True, "unsorted": True, "scaled": True, "sigmoid": True, "groups": "always"},
}


def _group_mask(scores: torch.Tensor, groups: tuple[int, int], how: str) -> torch.Tensor:
    """(T, E) true-expert scores -> (T, E) bool: experts in each token's ``topk_group`` best groups, a group
    scored by its best score ("max", DeepSeek-V2) or the sum of its two best ("top2_sum", DeepSeek-V3)."""
    num_group, topk_group = groups
    tokens, experts = scores.shape
    grouped = scores.reshape(tokens, num_group, experts // num_group)
    ranked = grouped.max(dim=-1).values if how == "max" else grouped.topk(2, dim=-1)[0].sum(dim=-1)
    chosen = torch.topk(ranked, k=topk_group, dim=-1, sorted=False)[1]
    mask = torch.zeros_like(ranked).scatter_(1, chosen, 1)
    return mask.unsqueeze(-1).expand(-1, num_group, experts // num_group).reshape(tokens, experts).bool()


def _restrict(scores: torch.Tensor, eligible: torch.Tensor, fill: float) -> torch.Tensor:
    """(T, E+m) scores with the true experts outside ``eligible`` (T, E) set to ``fill``; nulls kept."""
    experts = eligible.shape[-1]
    true = scores[:, :experts].masked_fill(~eligible, fill)
    return torch.cat([true, scores[:, experts:]], dim=-1)


class NullRouter(nn.Module):
    """The family's router over E true + m null experts; returns its (logits, weights, indices) tuple."""

    def __init__(self, *, original: nn.Module, settings: dict[str, Any], family: dict[str, Any]) -> None:
        super().__init__()
        self.weight = original.weight
        self.num_experts, self.hidden_dim = int(self.weight.shape[0]), int(self.weight.shape[1])
        self.num_null = int(settings["null_experts"])
        self.top_k = int(settings["top_k"])
        self.base_top_k = int(settings.get("base_top_k") or self.top_k)
        self.normalize = int(settings["normalize"])
        self.null_type = str(settings["null_type"])
        self.family = family
        self.scale = float(getattr(original, "routed_scaling_factor", 1.0)) if family.get("scaled") else 1.0
        groups = family.get("groups")
        grouped = groups is not None and groups in ("always", getattr(original, "topk_method", None))
        self.groups = (int(original.num_group), int(original.topk_group)) if grouped else None
        device, dtype = self.weight.device, self.weight.dtype
        self.gate2 = None
        if self.num_null > 0:
            self.gate2 = nn.Parameter(torch.empty(self.num_null, self.hidden_dim, dtype=dtype, device=device))
        if family.get("sigmoid"):
            self.register_buffer("e_score_correction_bias", original.e_score_correction_bias)
            if self.num_null > 0:
                null_bias = torch.zeros(self.num_null, dtype=torch.float32, device=device)
                self.register_buffer("null_score_correction_bias", null_bias)

    def _select(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, E+m) logits -> ((T, k) scores of the picks, (T, k) indices)."""
        if self.family.get("sigmoid"):
            scores = logits.sigmoid()
            bias = self.e_score_correction_bias
            if self.num_null > 0:
                bias = torch.cat([bias, self.null_score_correction_bias.to(bias.dtype)])
            choice = scores + bias
            if self.groups is not None:
                eligible = _group_mask(choice[:, : self.num_experts], self.groups, "top2_sum")
                choice = _restrict(choice, eligible, float("-inf"))
            idx = torch.topk(choice, self.top_k, dim=-1, sorted=False)[1]
            return scores.gather(1, idx), idx
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
        return self._softmax_topk(probs, self.top_k, sorted=not self.family.get("unsorted"))

    def _softmax_topk(
        self, probs: torch.Tensor, k: int, *, sorted: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.groups is not None:
            probs = _restrict(probs, _group_mask(probs[:, : self.num_experts], self.groups, "max"), 0.0)
        vals, idx = torch.topk(probs, k, dim=-1, sorted=sorted)
        return vals, idx

    def _weights(self, logits: torch.Tensor, vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(T, k) combination weights of the picks ``idx`` with scores ``vals`` (T, k)."""
        valid = idx >= 0
        contributes = valid if self.null_type == "identity" else valid & (idx < self.num_experts)
        rescale = self.normalize == 0 and self.num_null > 0 and not self.family.get("sigmoid")
        if self.normalize == 0 and not rescale:
            return vals * contributes
        over = contributes if self.normalize in (0, 2) else valid
        denom = (vals * over).sum(dim=-1, keepdim=True)
        weights = vals * contributes / torch.where(denom > 0, denom, torch.ones_like(denom))
        if rescale:  # the mass the original top-k had over the E true experts
            true_probs = torch.softmax(logits[:, : self.num_experts], dim=-1, dtype=torch.float32)
            weights = weights * self._softmax_topk(true_probs, self.base_top_k, sorted=True)[0].sum(-1, True)
        return weights

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., H) -> ((T, E+m) logits, (T, k) weights, (T, k) expert indices)."""
        hidden = hidden_states.reshape(-1, self.hidden_dim)
        weight = self.weight
        if self.gate2 is not None:
            weight = torch.cat([weight, self.gate2.to(weight.dtype)])
        if self.family.get("fp32"):
            logits = F.linear(hidden.float(), weight.float())
        else:
            logits = F.linear(hidden, weight)
        vals, idx = self._select(logits)
        weights = self._weights(logits, vals, idx)
        if self.family.get("scaled"):
            weights = weights * self.scale
        if self.family.get("cast"):
            weights = weights.to(logits.dtype)
        return logits, weights, idx


def _null_aware_forward(
    self: nn.Module, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
) -> torch.Tensor:
    """(T, H) tokens, (T, k) indices with nulls >= E, (T, k) weights -> (T, H) weighted expert outputs."""
    out = torch.zeros_like(hidden_states)
    true = (top_k_index >= 0) & (top_k_index < self.num_experts)
    for expert in torch.unique(top_k_index[true]).tolist():
        token, slot = torch.where(top_k_index == expert)
        gate_up = F.linear(hidden_states[token], self.gate_up_proj[expert])
        rows = F.linear(self._apply_gate(gate_up), self.down_proj[expert])
        out.index_add_(0, token, (rows * top_k_weights[token, slot, None]).to(out.dtype))
    if self.adamoe_null_type == "identity":
        nulls = top_k_index >= self.num_experts
        out = out + (top_k_weights * nulls).sum(dim=-1, keepdim=True).to(out.dtype) * hidden_states
    return out


_NULL_AWARE: dict[type, type] = {}


def _make_null_aware(experts: nn.Module, null_type: str) -> None:
    """Give ``experts`` (the family's fused experts module, same parameters) the null-aware forward."""
    base = type(experts)
    if base not in _NULL_AWARE:
        _NULL_AWARE[base] = type(f"NullAware{base.__name__}", (base,), {"forward": _null_aware_forward})
    experts.__class__ = _NULL_AWARE[base]
    experts.adamoe_null_type = null_type


def _convert(model: nn.Module, block_class: type[nn.Module], family: dict[str, Any]) -> None:
    settings = getattr(model.config, "adamoe", None)
    if not isinstance(settings, dict):
        raise ValueError(f"config.adamoe: expected the recorded AdaMoE settings, got {settings!r}")
    for block in [m for m in model.modules() if isinstance(m, block_class)]:
        block.gate = NullRouter(original=block.gate, settings=settings, family=family)
        _make_null_aware(block.experts, settings["null_type"])
    model.config.output_router_logits = False  # transformers' aux loss knows nothing of null experts


class _NoFusedMoE:
    """vLLM / SGLang run transformers models through their own fused-MoE kernels, which know nothing of
    null experts; ``is_backend_compatible()`` False makes their Transformers backend refuse the model."""

    _supports_attention_backend = False


def _adamoe_class(
    base: type[nn.Module], config_class: type, block_class: type[nn.Module], family: str
) -> type[nn.Module]:
    """``base`` (the family's causal LM) whose constructor gives every ``block_class`` null experts."""

    def __init__(self: nn.Module, config: Any) -> None:
        base.__init__(self, config)
        _convert(self, block_class, FAMILIES[family])

    return type(
        f"AdaMoE{base.__name__}",
        (_NoFusedMoE, base),
        {"__init__": __init__, "config_class": config_class, "__module__": __name__},
    )


AdaMoEMixtralForCausalLM = _adamoe_class(
    MixtralForCausalLM, AdaMoEMixtralConfig, MixtralSparseMoeBlock, "mixtral"
)
AdaMoEQwen2MoeForCausalLM = _adamoe_class(
    Qwen2MoeForCausalLM, AdaMoEQwen2MoeConfig, Qwen2MoeSparseMoeBlock, "qwen2_moe"
)
AdaMoEQwen3MoeForCausalLM = _adamoe_class(
    Qwen3MoeForCausalLM, AdaMoEQwen3MoeConfig, Qwen3MoeSparseMoeBlock, "qwen3_moe"
)
AdaMoEOlmoeForCausalLM = _adamoe_class(OlmoeForCausalLM, AdaMoEOlmoeConfig, OlmoeSparseMoeBlock, "olmoe")
AdaMoEDeepseekV2ForCausalLM = _adamoe_class(
    DeepseekV2ForCausalLM, AdaMoEDeepseekV2Config, DeepseekV2Moe, "deepseek_v2"
)
AdaMoEDeepseekV3ForCausalLM = _adamoe_class(
    DeepseekV3ForCausalLM, AdaMoEDeepseekV3Config, DeepseekV3MoE, "deepseek_v3"
)
