"""AdaMoE causal LMs (null experts) for ``trust_remote_code=True``; needs only torch and transformers.

Each class is the family's own transformers causal LM with two changes in every sparse MoE block:

- ``block.gate`` scores E true + m null experts (weights ``gate.weight`` (E, H) and ``gate.gate2``
  (m, H)), picks the top k over the softmax of all E+m logits and weights the picks as recorded in
  ``config.adamoe["normalize"]``: 2 = renormalised over the picks that contribute (true experts, plus
  identity nulls), 1 = over all picks, 0 = raw, except that with nulls the raw weights are rescaled to
  the probability mass the original top-``base_top_k`` would have had over the E true logits. Nulls are
  numbered E..E+m-1.
- ``block.experts`` runs only the true experts a token picked (zero nulls contribute nothing, identity
  nulls add ``weight * x``), in a loop over the experts that received tokens.

This reproduces ``adamoe.hf`` (its ``AdaMoERouter`` and "adamoe" experts implementation) for the softmax
families. Written by ``adamoe.hf.export_remote``; the weights beside it are in the runtime layout.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import MixtralForCausalLM, OlmoeForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock
from transformers.models.olmoe.modeling_olmoe import OlmoeSparseMoeBlock
from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock
from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeSparseMoeBlock

from .configuration_adamoe import (
    AdaMoEMixtralConfig,
    AdaMoEOlmoeConfig,
    AdaMoEQwen2MoeConfig,
    AdaMoEQwen3MoeConfig,
)

__all__ = [
    "AdaMoEMixtralForCausalLM",
    "AdaMoEOlmoeForCausalLM",
    "AdaMoEQwen2MoeForCausalLM",
    "AdaMoEQwen3MoeForCausalLM",
]


def _contributing(indices: torch.Tensor, num_experts: int, null_type: str) -> torch.Tensor:
    """(T, k) bool: slots whose expert adds an output (true experts; identity nulls too)."""
    valid = indices >= 0
    return valid if null_type == "identity" else valid & (indices < num_experts)


class NullRouter(nn.Module):
    """Softmax top-k router over E true + m null experts; returns the family's (logits, weights, indices)."""

    def __init__(self, *, weight: nn.Parameter, settings: dict[str, Any], cast_weights: bool) -> None:
        super().__init__()
        self.weight = weight
        self.num_experts, self.hidden_dim = int(weight.shape[0]), int(weight.shape[1])
        self.num_null = int(settings["null_experts"])
        self.top_k = int(settings["top_k"])
        self.base_top_k = int(settings.get("base_top_k") or self.top_k)
        self.normalize = int(settings["normalize"])
        self.null_type = str(settings["null_type"])
        self.cast_weights = cast_weights
        if self.num_null > 0:
            gate2 = torch.empty(self.num_null, self.hidden_dim, dtype=weight.dtype, device=weight.device)
            self.gate2 = nn.Parameter(gate2)
        else:
            self.register_parameter("gate2", None)

    def _weights(self, logits: torch.Tensor, probs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(T, k) combination weights of the picks ``idx`` with softmax values ``probs`` (T, k)."""
        contributes = _contributing(idx, self.num_experts, self.null_type)
        raw_with_nulls = self.normalize == 0 and self.num_null > 0
        if self.normalize == 0 and not raw_with_nulls:
            return probs * contributes
        over = contributes if self.normalize in (0, 2) else idx >= 0
        denom = (probs * over).sum(dim=-1, keepdim=True)
        weights = probs * contributes / torch.where(denom > 0, denom, torch.ones_like(denom))
        if raw_with_nulls:
            true_probs = torch.softmax(logits[:, : self.num_experts], dim=-1, dtype=torch.float32)
            mass = torch.topk(true_probs, self.base_top_k, dim=-1).values.sum(dim=-1, keepdim=True)
            weights = weights * mass
        return weights

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., H) -> ((T, E+m) logits, (T, k) weights, (T, k) expert indices)."""
        hidden = hidden_states.reshape(-1, self.hidden_dim)
        weight = self.weight
        if self.gate2 is not None:
            weight = torch.cat([weight, self.gate2.to(weight.dtype)])
        logits = F.linear(hidden, weight)
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
        vals, idx = torch.topk(probs, self.top_k, dim=-1)
        weights = self._weights(logits, vals, idx)
        if self.cast_weights:
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


def _convert(model: nn.Module, block_class: type[nn.Module], *, cast_weights: bool) -> None:
    settings = getattr(model.config, "adamoe", None)
    if not isinstance(settings, dict):
        raise ValueError(f"config.adamoe: expected the recorded AdaMoE settings, got {settings!r}")
    for block in [m for m in model.modules() if isinstance(m, block_class)]:
        block.gate = NullRouter(weight=block.gate.weight, settings=settings, cast_weights=cast_weights)
        _make_null_aware(block.experts, settings["null_type"])
    model.config.output_router_logits = False  # transformers' aux loss knows nothing of null experts


class _NoFusedMoE:
    """vLLM / SGLang run transformers models through their own fused-MoE kernels, which know nothing of
    null experts; ``is_backend_compatible()`` False makes their Transformers backend refuse the model."""

    _supports_attention_backend = False


def _adamoe_class(
    base: type[nn.Module], config_class: type, block_class: type[nn.Module], *, cast_weights: bool
) -> type[nn.Module]:
    """``base`` (the family's causal LM) whose constructor gives every ``block_class`` null experts.
    ``cast_weights``: the family casts the routing weights to the logits dtype (Qwen, OLMoE)."""

    def __init__(self: nn.Module, config: Any) -> None:
        base.__init__(self, config)
        _convert(self, block_class, cast_weights=cast_weights)

    return type(
        f"AdaMoE{base.__name__}",
        (_NoFusedMoE, base),
        {"__init__": __init__, "config_class": config_class, "__module__": __name__},
    )


AdaMoEMixtralForCausalLM = _adamoe_class(
    MixtralForCausalLM, AdaMoEMixtralConfig, MixtralSparseMoeBlock, cast_weights=False
)
AdaMoEQwen2MoeForCausalLM = _adamoe_class(
    Qwen2MoeForCausalLM, AdaMoEQwen2MoeConfig, Qwen2MoeSparseMoeBlock, cast_weights=True
)
AdaMoEQwen3MoeForCausalLM = _adamoe_class(
    Qwen3MoeForCausalLM, AdaMoEQwen3MoeConfig, Qwen3MoeSparseMoeBlock, cast_weights=True
)
AdaMoEOlmoeForCausalLM = _adamoe_class(
    OlmoeForCausalLM, AdaMoEOlmoeConfig, OlmoeSparseMoeBlock, cast_weights=True
)
