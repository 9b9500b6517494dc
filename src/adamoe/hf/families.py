"""Family table: where each transformers MoE architecture keeps its router and how it routes.

Every supported family (transformers 5.x) has the same block shape: ``block.gate`` is a router module
returning ``(router_logits, top_k_weights, top_k_index)`` and ``block.experts`` is a fused 3D SwiGLU
experts module dispatched through transformers' experts-implementation registry. What differs, and what
an AdaMoE router must reproduce bit for bit at m = 0, is recorded here:

- scoring: softmax (Mixtral, Qwen, OLMoE, DeepSeek-V2) or sigmoid with a selection-only bias
  (DeepSeek-V3, ``e_score_correction_bias``);
- selection: plain top-k, or DeepSeek's group-limited top-k;
- weights: renormalised over the top-k (Mixtral always; Qwen/OLMoE/DeepSeek-V3 when
  ``norm_topk_prob``), raw (Qwen2-MoE default, DeepSeek-V2), times ``routed_scaling_factor`` (DeepSeek);
- dtypes: DeepSeek computes router logits in fp32; Qwen/OLMoE cast the weights back to the logits dtype;
- ``topk(sorted=False)`` in DeepSeek (the slot order changes the experts' summation order).

Shared experts (Qwen2-MoE ``shared_expert`` + ``shared_expert_gate``, DeepSeek ``shared_experts``) sit
beside the router and are left untouched.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True, kw_only=True)
class FamilySpec:
    """How one transformers MoE architecture routes (see module docstring)."""

    model_type: str
    module: str
    block_class: str
    router_class: str
    num_experts_field: str
    top_k_field: str = "num_experts_per_tok"
    router_attr: str = "gate"
    experts_attr: str = "experts"
    shared_expert_attrs: tuple[str, ...] = ()
    scoring: str = "softmax"
    selection: str = "topk"
    always_normalize: bool = False
    logits_fp32: bool = False
    weights_to_logits_dtype: bool = False
    topk_sorted: bool = True
    scaled: bool = False

    def classes(self) -> tuple[type[nn.Module], type[nn.Module]]:
        """The (block, router) classes from the installed transformers."""
        mod = importlib.import_module(self.module)
        return getattr(mod, self.block_class), getattr(mod, self.router_class)

    def num_experts(self, config: Any) -> int:
        """E, read from the family's config field."""
        return int(getattr(config, self.num_experts_field))

    def top_k(self, config: Any) -> int:
        """The model's own k, read from the family's config field."""
        return int(getattr(config, self.top_k_field))

    def normalizes(self, router: nn.Module) -> bool:
        """Whether the original router renormalises its top-k weights (read from the live router)."""
        return self.always_normalize or bool(getattr(router, "norm_topk_prob", False))


def _spec(model_type: str, **kw: Any) -> FamilySpec:
    return FamilySpec(
        model_type=model_type, module=f"transformers.models.{model_type}.modeling_{model_type}", **kw
    )


# What DeepSeek-V2 and -V3 share: shared experts, fp32 logits, unsorted top-k, routed_scaling_factor.
_DEEPSEEK: dict[str, Any] = {
    "num_experts_field": "n_routed_experts",
    "shared_expert_attrs": ("shared_experts",),
    "logits_fp32": True,
    "topk_sorted": False,
    "scaled": True,
}

FAMILY_SPECS: dict[str, FamilySpec] = {
    s.model_type: s
    for s in (
        _spec(
            "mixtral",
            block_class="MixtralSparseMoeBlock",
            router_class="MixtralTopKRouter",
            num_experts_field="num_local_experts",
            always_normalize=True,
        ),
        _spec(
            "qwen2_moe",
            block_class="Qwen2MoeSparseMoeBlock",
            router_class="Qwen2MoeTopKRouter",
            num_experts_field="num_experts",
            shared_expert_attrs=("shared_expert", "shared_expert_gate"),
            weights_to_logits_dtype=True,
        ),
        _spec(
            "qwen3_moe",
            block_class="Qwen3MoeSparseMoeBlock",
            router_class="Qwen3MoeTopKRouter",
            num_experts_field="num_experts",
            weights_to_logits_dtype=True,
        ),
        _spec(
            "olmoe",
            block_class="OlmoeSparseMoeBlock",
            router_class="OlmoeTopKRouter",
            num_experts_field="num_experts",
            weights_to_logits_dtype=True,
        ),
        _spec(
            "deepseek_v2",
            block_class="DeepseekV2Moe",
            router_class="DeepseekV2TopkRouter",
            selection="deepseek_v2",
            **_DEEPSEEK,
        ),
        _spec(
            "deepseek_v3",
            block_class="DeepseekV3MoE",
            router_class="DeepseekV3TopkRouter",
            scoring="sigmoid",
            selection="deepseek_v3",
            **_DEEPSEEK,
        ),
    )
}

SUPPORTED = tuple(FAMILY_SPECS)

PREFIX = "adamoe_"
"""Model types of converted checkpoints are ``adamoe_<family>`` (:mod:`adamoe.hf.auto` registers them)."""


def model_type_for(family: str) -> str:
    """``"mixtral"`` -> ``"adamoe_mixtral"``: the model type a converted checkpoint of ``family`` carries."""
    if family not in FAMILY_SPECS:
        raise ValueError(f"family: expected one of {', '.join(FAMILY_SPECS)}, got {family!r}")
    return PREFIX + family


def family_of_type(model_type: str) -> str | None:
    """``"adamoe_mixtral"`` -> ``"mixtral"``; None for any other model type."""
    family = model_type.removeprefix(PREFIX) if model_type.startswith(PREFIX) else None
    return family if family in FAMILY_SPECS else None


def family_of(model: nn.Module) -> FamilySpec:
    """The spec of ``model``'s architecture; one-line ``ValueError`` listing the supported ones otherwise."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if isinstance(model_type, str):  # a reloaded converted checkpoint is "adamoe_<family>"
        model_type = model_type.removeprefix(PREFIX)
    if model_type not in FAMILY_SPECS:
        raise ValueError(
            f"model: architecture {model_type!r} is not supported; expected one of {', '.join(SUPPORTED)}"
        )
    return FAMILY_SPECS[model_type]


def moe_blocks(model: nn.Module, spec: FamilySpec) -> list[tuple[str, nn.Module]]:
    """Every MoE block of ``model`` (dense layers, e.g. DeepSeek's first_k_dense_replace, are skipped)."""
    block_cls, _ = spec.classes()
    return [(name, m) for name, m in model.named_modules() if isinstance(m, block_cls)]
