"""Configs of AdaMoE checkpoints (null experts) for ``trust_remote_code=True``; needs only transformers.

Each is the family's own config with a model type of its own (``adamoe_<family>``), so transformers
without this code refuses the checkpoint instead of loading it as the unconverted model. The conversion
settings travel in ``config.adamoe`` (null_experts, top_k, null_type, normalize, base_top_k, ...).
Written by ``adamoe.hf.export_remote``.
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
    "AdaMoEDeepseekV2Config",
    "AdaMoEDeepseekV3Config",
    "AdaMoEMixtralConfig",
    "AdaMoEOlmoeConfig",
    "AdaMoEQwen2MoeConfig",
    "AdaMoEQwen3MoeConfig",
]


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
