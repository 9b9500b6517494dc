"""Configs of AdaMoE checkpoints (null experts) for ``trust_remote_code=True``; needs only transformers.

Each is the family's own config with a model type of its own (``adamoe_<family>``), so transformers
without this code refuses the checkpoint instead of loading it as the unconverted model. The conversion
settings travel in ``config.adamoe`` (null_experts, top_k, null_type, normalize, base_top_k, ...).
Written by ``adamoe.hf.save`` and ``adamoe.hf.export_remote``.

Importing this module (transformers does, before it reads the weights) gives each ``adamoe_<family>``
model type its family's checkpoint conversions, so the per-expert layout ``save_pretrained`` writes loads
into the fused experts exactly as it does for the family itself.
"""

from __future__ import annotations

from transformers import (
    DeepseekV2Config,
    DeepseekV3Config,
    MixtralConfig,
    OlmoeConfig,
    Qwen2MoeConfig,
    Qwen3MoeConfig,
)

__all__ = [
    "FAMILY_NAMES",
    "AdaMoEDeepseekV2Config",
    "AdaMoEDeepseekV3Config",
    "AdaMoEMixtralConfig",
    "AdaMoEOlmoeConfig",
    "AdaMoEQwen2MoeConfig",
    "AdaMoEQwen3MoeConfig",
    "share_checkpoint_conversions",
]

#: The transformers model types these configs extend.
FAMILY_NAMES = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3")


class AdaMoEMixtralConfig(MixtralConfig):
    model_type = "adamoe_mixtral"


class AdaMoEQwen2MoeConfig(Qwen2MoeConfig):
    model_type = "adamoe_qwen2_moe"


class AdaMoEQwen3MoeConfig(Qwen3MoeConfig):
    model_type = "adamoe_qwen3_moe"


class AdaMoEOlmoeConfig(OlmoeConfig):
    model_type = "adamoe_olmoe"


class AdaMoEDeepseekV2Config(DeepseekV2Config):
    model_type = "adamoe_deepseek_v2"


class AdaMoEDeepseekV3Config(DeepseekV3Config):
    model_type = "adamoe_deepseek_v3"


def share_checkpoint_conversions(family: str) -> None:
    """Register ``family``'s checkpoint conversions for ``adamoe_<family>`` too (idempotent; a no-op on a
    transformers without the registry or a family without conversions)."""
    try:
        from transformers.conversion_mapping import (
            get_checkpoint_conversion_mapping,
            register_checkpoint_conversion_mapping,
        )
    except ImportError:
        return
    conversions = get_checkpoint_conversion_mapping(family)
    if conversions is not None and get_checkpoint_conversion_mapping(f"adamoe_{family}") is None:
        register_checkpoint_conversion_mapping(f"adamoe_{family}", conversions)


for _family in FAMILY_NAMES:
    share_checkpoint_conversions(_family)
