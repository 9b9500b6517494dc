"""Dense -> MoE upcycling of Llama-family causal LMs into a standard `MixtralForCausalLM`.

Why Mixtral: it is the plain "attention + top-k routed SwiGLU experts" architecture that transformers
ships, so an upcycled SmolLM2 can be saved, reloaded with `AutoModelForCausalLM`, and pushed through the
same null-expert conversion as a real Mixtral. Everything except the MLPs (embeddings, attention, norms,
rotary settings, head) is carried over unchanged, so attention is identical by construction.

Two ways to fill the experts (`mode`):

* ``"copy"`` (sparse upcycling): every expert is the dense MLP, optionally plus independent gaussian
  noise. Mixtral renormalises the top-k routing weights to sum to 1, so with ``noise_std=0`` the MoE
  block computes ``sum_k w_k * MLP(x) = MLP(x)`` and the upcycled logits equal the dense logits whatever
  the (random, seeded) router says.
* ``"split"`` (MoEfication): the ``I`` intermediate neurons are cut into ``E`` contiguous groups of
  ``I/E``; expert ``e`` owns group ``e`` and its ``down_proj`` columns are multiplied by ``top_k``. A
  SwiGLU MLP is a sum over its neurons, so ``MLP(x) = sum_e f_e(x)`` with ``f_e`` the contribution of
  group ``e``, and the block computes ``sum_{e in topk} (top_k * w_e) * f_e(x)``. Under uniform routing
  (``router_std=0``: every renormalised weight is ``1/top_k``) each selected expert therefore contributes
  exactly its dense slice; with ``top_k == num_experts`` the upcycled model equals the dense one.
  Choosing fewer experts drops the unselected slices (a pruned dense MLP), which is what the router is
  then fine-tuned to make cheap.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from transformers import MixtralConfig, MixtralForCausalLM, PreTrainedModel
from transformers.initialization import no_init_weights

from adamoe.utils.seeding import derive_generator

__all__ = ["SUPPORTED_ARCHITECTURES", "upcycle_to_mixtral"]

SUPPORTED_ARCHITECTURES: tuple[str, ...] = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM")

UpcycleMode = Literal["copy", "split"]

# Non-MLP parameters whose names are identical in the dense families and in Mixtral.
_SHARED_SUFFIXES: tuple[str, ...] = (
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
)


def upcycle_to_mixtral(
    model: PreTrainedModel,
    *,
    num_experts: int = 8,
    top_k: int = 2,
    mode: UpcycleMode = "copy",
    noise_std: float = 0.0,
    router_std: float | None = None,
    seed: int = 0,
) -> MixtralForCausalLM:
    """Return a new `MixtralForCausalLM` whose experts are built from `model`'s MLPs (see module doc).

    `router_std` is the std of the seeded gaussian router init (default: the dense config's
    `initializer_range`); 0 gives uniform routing. `noise_std` adds independent gaussian noise of that
    absolute std to every expert weight, which breaks expert symmetry at the cost of exact equality.
    Router rows and expert noise draw from streams of their own derived from `seed`
    (:func:`adamoe.utils.seeding.derive_generator`), so a converter seeded alike draws other numbers.
    The input model is not modified. Result is in eval mode with the dense model's dtype.
    """
    arch = type(model).__name__
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ValueError(f"model: expected one of {', '.join(SUPPORTED_ARCHITECTURES)}, got {arch}")
    _check_args(num_experts=num_experts, top_k=top_k, mode=mode, noise_std=noise_std, router_std=router_std)
    dense_cfg = model.config
    inter = dense_cfg.intermediate_size
    if mode == "split" and inter % num_experts != 0:
        raise ValueError(
            f"num_experts: split mode needs intermediate_size ({inter}) divisible by num_experts, got {num_experts}"
        )
    moe_cfg = mixtral_config_from_dense(
        dense_cfg,
        num_experts=num_experts,
        top_k=top_k,
        intermediate_size=inter // num_experts if mode == "split" else inter,
    )
    dense_sd = model.state_dict()
    _check_dense_params(dense_sd, arch)

    with no_init_weights():  # every parameter is overwritten below; skip the random init
        moe = MixtralForCausalLM(moe_cfg)
    moe = moe.to(dense_sd["model.embed_tokens.weight"].dtype)
    _fill(
        moe,
        dense_sd,
        num_experts=num_experts,
        top_k=top_k,
        mode=mode,
        noise_std=noise_std,
        router_std=dense_cfg.initializer_range if router_std is None else router_std,
        seed=seed,
    )
    moe.tie_weights()
    attn_impl = getattr(dense_cfg, "_attn_implementation", None)
    if attn_impl and attn_impl != moe.config._attn_implementation:
        moe.set_attn_implementation(attn_impl)
    moe.generation_config = copy.deepcopy(model.generation_config)
    return moe.eval()


def _check_dense_params(dense_sd: dict[str, torch.Tensor], arch: str) -> None:
    """Every dense parameter must have a Mixtral counterpart (or be an all-zero bias, dropped exactly)."""
    _refuse_nonzero_biases(dense_sd, arch)
    unknown = sorted(k for k in dense_sd if _kind(k) == "unknown")
    if unknown:
        raise ValueError(
            f"model: {arch} has parameters with no Mixtral counterpart: {', '.join(unknown[:4])}"
        )


def _fill(
    moe: MixtralForCausalLM,
    dense_sd: dict[str, torch.Tensor],
    *,
    num_experts: int,
    top_k: int,
    mode: str,
    noise_std: float,
    router_std: float,
    seed: int,
) -> None:
    """Write every parameter of ``moe`` in place: shared ones copied, experts built from the dense MLPs,
    routers drawn (E, H) ~ N(0, router_std) from their own stream; refuse any Mixtral parameter left unset."""
    targets = moe.state_dict()  # shares storage with the parameters: copy_ fills them in place
    filled: set[str] = set()

    def put(name: str, value: torch.Tensor) -> None:
        targets[name].copy_(value)
        filled.add(name)

    for name, tensor in dense_sd.items():
        if _kind(name) == "shared":  # same name and meaning in Mixtral
            put(name, tensor)

    router_gen = derive_generator(seed, "upcycle.router")
    noise_gen = derive_generator(seed, "upcycle.expert_noise")
    for i in range(moe.config.num_hidden_layers):
        pre = f"model.layers.{i}."
        mlp = [dense_sd[pre + f"mlp.{p}_proj.weight"].float() for p in ("gate", "up", "down")]
        gate_up, down_e = _experts(*mlp, mode=mode, num_experts=num_experts, top_k=top_k)
        if noise_std > 0:
            gate_up += torch.randn(gate_up.shape, generator=noise_gen) * noise_std
            down_e += torch.randn(down_e.shape, generator=noise_gen) * noise_std
        put(
            pre + "mlp.gate.weight",
            torch.randn(num_experts, moe.config.hidden_size, generator=router_gen) * router_std,
        )
        put(pre + "mlp.experts.gate_up_proj", gate_up)
        put(pre + "mlp.experts.down_proj", down_e)

    missing = sorted(set(targets) - filled)
    if missing:  # a Mixtral release with parameters this converter does not know about
        raise RuntimeError(f"upcycle: Mixtral parameters left unset: {', '.join(missing[:4])}")


def backbone_fields(dense_cfg: Any) -> dict[str, Any]:
    """Config fields an MoE model built from a dense Llama-family model takes over unchanged: vocabulary,
    widths, attention heads, activation, RoPE, norms, special tokens and tying (any HF MoE config)."""
    names = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "hidden_act",
        "max_position_embeddings",
        "rms_norm_eps",
        "tie_word_embeddings",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
    )
    return {
        **{name: getattr(dense_cfg, name) for name in names},
        "rope_parameters": copy.deepcopy(dense_cfg.rope_parameters),
    }


def mixtral_config_from_dense(
    dense_cfg, *, num_experts: int, top_k: int, intermediate_size: int
) -> MixtralConfig:
    """MixtralConfig with the dense model's attention, rope, norm, vocab and tying settings."""
    head_dim = getattr(dense_cfg, "head_dim", None) or dense_cfg.hidden_size // dense_cfg.num_attention_heads
    return MixtralConfig(
        **backbone_fields(dense_cfg),
        intermediate_size=intermediate_size,
        head_dim=head_dim,
        initializer_range=dense_cfg.initializer_range,
        use_cache=dense_cfg.use_cache,
        sliding_window=_uniform_sliding_window(dense_cfg),
        attention_dropout=dense_cfg.attention_dropout,
        num_experts_per_tok=top_k,
        num_local_experts=num_experts,
        dtype=getattr(dense_cfg, "dtype", None),
    )


def _check_args(
    *, num_experts: int, top_k: int, mode: str, noise_std: float, router_std: float | None
) -> None:
    if mode not in ("copy", "split"):
        raise ValueError(f"mode: expected 'copy' or 'split', got {mode!r}")
    if num_experts < 1:
        raise ValueError(f"num_experts: expected >= 1, got {num_experts}")
    if not 1 <= top_k <= num_experts:
        raise ValueError(f"top_k: expected 1 <= top_k <= num_experts ({num_experts}), got {top_k}")
    if noise_std < 0:
        raise ValueError(f"noise_std: expected >= 0, got {noise_std}")
    if router_std is not None and router_std < 0:
        raise ValueError(f"router_std: expected >= 0 or None, got {router_std}")


_DENSE_MLP_SUFFIXES: tuple[str, ...] = ("mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")


def _kind(dense_name: str) -> Literal["shared", "mlp", "bias", "unknown"]:
    """How a dense parameter is carried over: unchanged, rebuilt as experts, dropped (zero bias) or not at all."""
    if dense_name.endswith(".bias"):
        return "bias"
    if dense_name in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"):
        return "shared"
    parts = dense_name.split(".", 3)  # model, layers, i, rest
    if len(parts) == 4 and parts[:2] == ["model", "layers"]:
        if parts[3] in _SHARED_SUFFIXES:
            return "shared"
        if parts[3] in _DENSE_MLP_SUFFIXES:
            return "mlp"
    return "unknown"


def _experts(
    gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor, *, mode: str, num_experts: int, top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense (I, H), (I, H), (H, I) MLP weights -> fused experts (E, 2I', H) gate_up and (E, H, I') down."""
    if mode == "copy":
        gate_up = torch.cat([gate, up], dim=0).expand(num_experts, -1, -1).clone()
        return gate_up, down.expand(num_experts, -1, -1).clone()
    gate_up = torch.cat([_groups(gate, num_experts), _groups(up, num_experts)], dim=1)
    return gate_up, _groups(down.t(), num_experts).transpose(1, 2) * top_k


def _groups(weight: torch.Tensor, num_experts: int) -> torch.Tensor:
    """(I, H) -> (E, I/E, H): expert e owns the contiguous neuron rows [e*I/E, (e+1)*I/E)."""
    return weight.reshape(num_experts, weight.shape[0] // num_experts, weight.shape[1])


def _refuse_nonzero_biases(dense_sd: dict[str, torch.Tensor], arch: str) -> None:
    """Mixtral has no linear biases: dropping an all-zero bias is exact, dropping any other is not."""
    for name, tensor in dense_sd.items():
        if name.endswith(".bias") and torch.count_nonzero(tensor) > 0:
            raise ValueError(
                f"model: {arch} parameter {name} is a non-zero bias, which MixtralForCausalLM cannot represent"
            )


def _uniform_sliding_window(dense_cfg) -> int | None:
    """Mixtral applies one sliding window to every layer; refuse per-layer mixes (Qwen2 max_window_layers)."""
    window = getattr(dense_cfg, "sliding_window", None)
    layer_types = getattr(dense_cfg, "layer_types", None)
    if not layer_types:
        return window
    kinds = set(layer_types)
    if kinds == {"full_attention"}:
        return None
    if kinds == {"sliding_attention"}:
        return window
    raise ValueError(
        f"config.layer_types: expected all layers full or all sliding attention (Mixtral has one window), "
        f"got {sorted(kinds)}"
    )
