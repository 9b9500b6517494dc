"""Tiny random-weight transformers models for fast, offline tests.

Every family the project adapts gets a two-layer, 32-wide, 128-token-vocabulary config so that a test can
build the real transformers module tree (routers, fused 3D experts, shared experts) in milliseconds and
compare our code against the original HF forward. MoE families use 4 experts with top-2 routing and make
every layer sparse where the family allows it.

`initializer_range` is raised from HF's 0.02 to 0.1: with a 32-wide model the default leaves logits and
MLP contributions so small that a 1e-5 equality test could not tell a broken conversion from a correct one.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedConfig, PreTrainedModel

__all__ = ["DENSE_FAMILIES", "MOE_FAMILIES", "TINY_FAMILIES", "tiny_config", "tiny_model"]

DENSE_FAMILIES: tuple[str, ...] = ("llama", "qwen2", "mistral")
MOE_FAMILIES: tuple[str, ...] = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3")
TINY_FAMILIES: tuple[str, ...] = DENSE_FAMILIES + MOE_FAMILIES

_COMMON: dict[str, Any] = {
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
    "initializer_range": 0.1,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

# DeepSeek multi-head latent attention: kv heads must equal query heads, head dims are set explicitly.
_MLA: dict[str, Any] = {
    "num_key_value_heads": 4,
    "kv_lora_rank": 16,
    "q_lora_rank": None,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 8,
    "v_head_dim": 8,
}

_FAMILY: dict[str, dict[str, Any]] = {
    "llama": {},
    "qwen2": {},
    "mistral": {"sliding_window": None},
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": None},
    "qwen2_moe": {
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 64,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
    },
    "qwen3_moe": {
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
    },
    "olmoe": {"num_experts": 4, "num_experts_per_tok": 2, "intermediate_size": 32},
    "deepseek_v2": {
        **_MLA,
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "n_shared_experts": 1,
        "first_k_dense_replace": 0,
        "topk_method": "greedy",
    },
    "deepseek_v3": {
        **_MLA,
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "n_shared_experts": 1,
        "first_k_dense_replace": 0,
        "n_group": 1,
        "topk_group": 1,
    },
}


def tiny_config(family: str, **overrides: Any) -> PreTrainedConfig:
    """Config of a tiny `family` model; `overrides` replace any field (e.g. `num_hidden_layers=3`)."""
    if family not in _FAMILY:
        raise ValueError(f"family: expected one of {', '.join(TINY_FAMILIES)}, got {family!r}")
    fields = {**_COMMON, **_FAMILY[family], **overrides}
    return AutoConfig.for_model(family, **fields)


def tiny_model(family: str, seed: int = 0, **overrides: Any) -> PreTrainedModel:
    """Seeded fp32 causal LM of `family` in eval mode; the global RNG state is left untouched."""
    config = tiny_config(family, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model.to(torch.float32).eval()
