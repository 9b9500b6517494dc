"""Forward FLOPs per token of a whole decoder, so a Load can be reported as the paper's %FLOPs.

Two figures, because they answer different questions:

- **expert FLOPs vs the top-k baseline** (``expert_flops_pct`` = 100 · load / k): what the routed
  experts cost relative to top-k routing. It ignores everything the router does not touch, so it
  overstates the saving of the model as a whole.
- **whole-model FLOPs vs the baseline** (``model_flops_pct``): attention projections, attention scores,
  the dense MLP of non-MoE layers, routed experts at the measured load, shared experts, the router and
  the LM head, relative to the same model with top-k routing (no null experts). This is the AdaMoE
  paper's "%FLOPs": Mixtral-8x7B at load 1.54 vs top-2 is 79.57% of the baseline FLOPs (experts alone
  would be 77%), and the Load column 1.66 · 1.68 · 1.59 · 1.63 · 1.70 · 1.67 of its Table 1 comes out
  as the −14.99 · −14.10 · −18.07 · −16.31 · −13.22 · −14.55 % it prints (``tests/eval/test_flops.py``).

Conventions: 2 FLOPs per multiply-accumulate; a matrix of shape (a, b) applied to one token costs 2ab.
Embedding look-ups, norms, activations, residual adds and softmaxes are not counted (element-wise, a
fraction of a percent). Attention scores (QKᵀ and the weighted sum of V) grow with the number of
positions a token attends to, ``context_len``: for a causal pass over L tokens its mean is (L + 1) / 2.
The paper states no length; its figures are matched at short contexts (multiple-choice prompts of a
few hundred tokens), and :data:`DEFAULT_CONTEXT_LEN` is the value our reports use and state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "DEFAULT_CONTEXT_LEN",
    "DecoderShape",
    "expert_flops_pct",
    "flops_figures",
    "forward_flops",
]

DEFAULT_CONTEXT_LEN = 128
"""Mean attended positions per token assumed by reports (a causal pass over ~255-token items)."""


@dataclass(frozen=True, kw_only=True)
class DecoderShape:
    """The sizes that set a decoder's forward FLOPs (read from a transformers config with
    :meth:`from_config`). ``num_experts == 0`` describes a dense model.

    MLA attention (DeepSeek-V2/V3) is described by ``q_lora_rank``/``kv_lora_rank`` and the per-head
    ``qk_dim`` (nope + rope) and ``v_dim``; plain multi-head / grouped-query attention leaves the ranks 0.
    """

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    qk_dim: int
    v_dim: int
    vocab_size: int
    intermediate_size: int
    num_experts: int = 0
    expert_intermediate_size: int = 0
    shared_intermediate_size: int = 0
    num_moe_layers: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_dim: int = 0
    mlp_matrices: int = 3  # gate, up, down (SwiGLU); 2 for a plain MLP

    @classmethod
    def from_config(cls, config: Any) -> DecoderShape:
        """Read a transformers decoder config (Llama/Qwen/Mistral, Mixtral, Qwen2/3-MoE, OLMoE, DeepSeek)."""
        config = getattr(config, "text_config", None) or config
        get = lambda name, default=0: getattr(config, name, None) or default  # noqa: E731
        hidden, heads = int(config.hidden_size), int(config.num_attention_heads)
        head_dim = int(get("head_dim", hidden // heads))
        experts = int(get("num_local_experts") or get("num_experts") or get("n_routed_experts"))
        expert_inter = int(get("moe_intermediate_size", config.intermediate_size)) if experts else 0
        shared = int(get("shared_expert_intermediate_size")) or int(get("n_shared_experts")) * expert_inter
        layers = int(config.num_hidden_layers)
        kv_rank = int(get("kv_lora_rank"))
        return cls(
            hidden_size=hidden,
            num_layers=layers,
            num_heads=heads,
            num_kv_heads=int(get("num_key_value_heads", heads)),
            qk_dim=int(get("qk_nope_head_dim") + get("qk_rope_head_dim")) if kv_rank else head_dim,
            v_dim=int(get("v_head_dim", head_dim)) if kv_rank else head_dim,
            vocab_size=int(config.vocab_size),
            intermediate_size=int(config.intermediate_size),
            num_experts=experts,
            expert_intermediate_size=expert_inter,
            shared_intermediate_size=shared if experts else 0,
            num_moe_layers=_moe_layers(config, layers) if experts else 0,
            q_lora_rank=int(get("q_lora_rank")),
            kv_lora_rank=kv_rank,
            qk_rope_dim=int(get("qk_rope_head_dim")) if kv_rank else 0,
        )

    def to_dict(self) -> dict[str, int]:
        """The shape as a plain dict of ints."""
        return asdict(self)


def _moe_layers(config: Any, layers: int) -> int:
    """How many decoder layers carry the MoE block (the rest keep a dense MLP of ``intermediate_size``)."""
    dense_first = int(getattr(config, "first_k_dense_replace", 0) or 0)  # DeepSeek
    step = int(getattr(config, "decoder_sparse_step", 1) or 1)  # Qwen2-MoE
    only_mlp = set(getattr(config, "mlp_only_layers", None) or ())
    return sum(1 for i in range(dense_first, layers) if i not in only_mlp and (i + 1) % step == 0)


def _attention_flops(s: DecoderShape, context_len: float) -> tuple[float, float]:
    """(projections, scores) FLOPs per token per layer."""
    h, nh = s.hidden_size, s.num_heads
    if s.kv_lora_rank:  # MLA: low-rank q (optional) and a shared compressed kv with a rope part
        q = h * s.q_lora_rank + s.q_lora_rank * nh * s.qk_dim if s.q_lora_rank else h * nh * s.qk_dim
        kv = h * (s.kv_lora_rank + s.qk_rope_dim) + s.kv_lora_rank * nh * (s.qk_dim - s.qk_rope_dim + s.v_dim)
        proj = q + kv + nh * s.v_dim * h
    else:
        proj = h * nh * s.qk_dim + 2 * h * s.num_kv_heads * s.qk_dim + nh * s.v_dim * h
    return 2.0 * proj, 2.0 * nh * (s.qk_dim + s.v_dim) * context_len


def forward_flops(
    shape: DecoderShape, *, load: float, num_null: int = 0, context_len: float = DEFAULT_CONTEXT_LEN
) -> dict[str, float]:
    """Forward FLOPs per token of the whole model, by part, and their ``total``.

    ``load``: mean true experts per token per MoE layer (the paper's Load); ``num_null``: null experts
    the router also scores (the router costs 2·H·(E + m)); ``context_len``: attended positions per token.
    """
    if load < 0 or num_null < 0 or context_len < 0:
        raise ValueError(f"load, num_null, context_len: expected >= 0, got {load}, {num_null}, {context_len}")
    s = shape
    proj, scores = _attention_flops(s, context_len)
    dense_layers = s.num_layers - s.num_moe_layers
    mlp = 2.0 * s.mlp_matrices * s.hidden_size
    parts = {
        "attention_proj": s.num_layers * proj,
        "attention_scores": s.num_layers * scores,
        "dense_mlp": dense_layers * mlp * s.intermediate_size,
        "experts": s.num_moe_layers * load * mlp * s.expert_intermediate_size,
        "shared_experts": s.num_moe_layers * mlp * s.shared_intermediate_size,
        "router": s.num_moe_layers * 2.0 * s.hidden_size * (s.num_experts + num_null),
        "lm_head": 2.0 * s.hidden_size * s.vocab_size,
    }
    parts["total"] = sum(parts.values())
    return parts


def expert_flops_pct(load: float, baseline_k: int) -> float:
    """Routed-expert FLOPs as a percentage of top-``baseline_k`` routing (100 · load / k)."""
    if baseline_k < 1:
        raise ValueError(f"baseline_k: expected a positive int, got {baseline_k}")
    return 100.0 * load / baseline_k


def flops_figures(
    shape: DecoderShape,
    *,
    load: float,
    baseline_k: int,
    num_null: int = 0,
    context_len: float = DEFAULT_CONTEXT_LEN,
) -> dict[str, float]:
    """Both figures for a report: ``expert_flops_pct`` and ``model_flops_pct`` (whole model vs the same
    model with top-``baseline_k`` routing and no null experts), with the FLOPs per token behind them."""
    ours = forward_flops(shape, load=load, num_null=num_null, context_len=context_len)["total"]
    base = forward_flops(shape, load=baseline_k, num_null=0, context_len=context_len)["total"]
    model_pct = 100.0 * ours / base
    return {
        "expert_flops_pct": expert_flops_pct(load, baseline_k),
        "model_flops_pct": model_pct,
        "model_flops_reduction_pct": 100.0 - model_pct,
        "model_flops_per_token": ours,
        "baseline_model_flops_per_token": base,
        "flops_context_len": float(context_len),
    }
