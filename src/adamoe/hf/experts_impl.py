"""The "adamoe" experts implementation: transformers' fused 3D experts that skip null slots for real.

Registered in transformers' ``ALL_EXPERTS_FUNCTIONS`` (the extension point behind
``model.set_experts_implementation``), so converted models keep their original experts modules and
forward functions. The function receives ``(hidden_states, top_k_index, top_k_weights)`` with null
experts numbered ``E..E+m-1``; it goes through :func:`adamoe.dispatch.dispatch`, which sorts the true
slots by expert and drops null and empty (-1) slots *before* any GEMM. Identity nulls add
``weight * x``. HF's own ``grouped_mm``/``eager`` would read out of bounds or waste GEMMs on such
indices, which is why a converted model must keep this implementation.

SiLU-gated experts with concatenated [gate; up] weights (every supported family) run the fused
:func:`~adamoe.experts.grouped_mm.grouped_swiglu` kernel; anything else (other activations, biases,
transposed layouts, post-expert norms) falls back to a per-expert loop that honours the module's own
``_apply_gate`` / ``act_fn``.

LoRA on the fused weights: while a :class:`adamoe.hf.lora_experts.ParamWrapper` wrapper runs, the
experts module carries the updates' low-rank factors in :data:`LORA_ATTR` (a dict from parameter name
to :class:`~adamoe.experts.low_rank.LowRank`), and the SwiGLU runs as the frozen weights plus rank-r
grouped GEMMs (:func:`~adamoe.experts.low_rank.low_rank_swiglu`): no merged ``W + ΔW`` is built or
saved for backward. PEFT's own ``ParamWrapper`` (a parametrisation that merges on every forward) still
works, with one warning while gradients are on.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from transformers.activations import SiLUActivation
from transformers.integrations.moe import ExpertsInterface, _default_apply_gate

from adamoe.dispatch import dispatch
from adamoe.experts import kernels
from adamoe.experts.backend import auto_swiglu as grouped_swiglu  # the fastest backend per shape (issue 12)
from adamoe.experts.low_rank import LowRank, low_rank_swiglu
from adamoe.routing.base import Routing

EXPERTS_IMPLEMENTATION = "adamoe"

#: Attributes :func:`adamoe.hf.convert.convert` sets on each experts module (plain attributes: no state).
NUM_NULL_ATTR = "adamoe_num_null"
NULL_TYPE_ATTR = "adamoe_null_type"

#: Attribute a LoRA wrapper sets on the experts module for the duration of its forward:
#: ``{"gate_up_proj": LowRank, "down_proj": LowRank}`` (either may be absent).
LORA_ATTR = "adamoe_lora"

_NO_SCORES = torch.empty(0)


def takes_low_rank(experts: nn.Module) -> bool:
    """Whether this implementation runs ``experts`` and reads LoRA factors from :data:`LORA_ATTR` (the
    fused SwiGLU path); a LoRA wrapper must merge the weights itself otherwise."""
    implementation = getattr(getattr(experts, "config", None), "_experts_implementation", None)
    return implementation == EXPERTS_IMPLEMENTATION and uses_fused_swiglu(experts)


def uses_fused_swiglu(experts: nn.Module) -> bool:
    """True when ``experts`` is SiLU(gate) * up in HF's concatenated (E, 2I, H) / (E, H, I) layout."""
    return (
        getattr(experts, "has_gate", True)
        and not getattr(experts, "has_bias", False)
        and not getattr(experts, "is_transposed", False)
        and getattr(experts, "is_concatenated", True)
        and not getattr(experts, "has_post_expert_norm", False)
        and getattr(type(experts), "_apply_gate", _default_apply_gate) is _default_apply_gate
        and isinstance(getattr(experts, "act_fn", None), (SiLUActivation, nn.SiLU))
    )


class _FusedSwiGLU:
    """Grouped-experts adapter for :func:`dispatch`: one fused SwiGLU kernel over all true rows."""

    def __init__(self, experts: nn.Module) -> None:
        self.experts = experts
        self.num_experts = experts.num_experts
        self.lora: dict[str, LowRank] = getattr(experts, LORA_ATTR, None) or {}

    def fused_swiglu_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The weights :func:`adamoe.dispatch.dispatch_sync_free` runs on CUDA (no host sync per layer)."""
        return self.experts.gate_up_proj, self.experts.down_proj

    def fused_swiglu_lora(self) -> tuple[LowRank | None, LowRank | None]:
        """The LoRA updates of (gate_up_proj, down_proj) that the grouped GEMMs add low-rank."""
        return self.lora.get("gate_up_proj"), self.lora.get("down_proj")

    def forward_decode(self, hidden: torch.Tensor, routing: Routing) -> torch.Tensor | None:
        """(T, H) -> (T, H) at decode through the fused kernel (:func:`kernels.moe_decode`: inference,
        CPU, T <= 8), or None so that :func:`dispatch` takes the grouped path. Reads the weights the
        way ``forward_grouped`` does, so a PEFT-parametrised (LoRA) weight is the merged one in both;
        low-rank LoRA factors (which the kernel knows nothing of) send it to the grouped path, and so
        does ``torch.compile`` (the C++ kernel cannot be traced: it would break the graph per layer)."""
        if self.lora or torch.compiler.is_compiling():
            return None
        e = self.experts
        done = kernels.moe_decode(
            hidden, e.gate_up_proj, e.down_proj, routing.indices, routing.weights, self.num_experts
        )
        return None if done is None else done[0]

    def forward_grouped(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """(N, H) rows grouped by expert (``counts[e]`` each) -> (N, H) expert outputs."""
        gate_up, down = self.experts.gate_up_proj, self.experts.down_proj
        if self.lora:
            gate_up_lora, down_lora = self.fused_swiglu_lora()
            out = low_rank_swiglu(
                rows.to(gate_up.dtype), gate_up, down, counts, gate_up_lora=gate_up_lora, down_lora=down_lora
            )
            return out.to(rows.dtype)
        return grouped_swiglu(rows.to(gate_up.dtype), gate_up, down, counts).to(rows.dtype)


class _ExpertLoop:
    """Per-expert fallback honouring biases, transposed weights, custom gates and post-expert norms."""

    def __init__(self, experts: nn.Module) -> None:
        self.experts = experts
        self.num_experts = experts.num_experts

    def _linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        out = x @ weight if getattr(self.experts, "is_transposed", False) else F.linear(x, weight)
        return out if bias is None else out + bias

    def forward_grouped(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """(N, H) rows grouped by expert (``counts[e]`` each) -> (N, H), one expert at a time."""
        m = self.experts
        has_gate = getattr(m, "has_gate", True)
        has_bias = getattr(m, "has_bias", False)
        up_name = "gate_up_proj" if has_gate else "up_proj"
        up_w, down_w = getattr(m, up_name), m.down_proj
        up_b = getattr(m, f"{up_name}_bias") if has_bias else None
        down_b = m.down_proj_bias if has_bias else None
        dtype, rows = rows.dtype, rows.to(up_w.dtype)
        outs, start = [], 0
        for e, n in enumerate(counts):
            if n:
                h = self._linear(rows[start : start + n], up_w[e], None if up_b is None else up_b[e])
                h = m._apply_gate(h) if has_gate else m.act_fn(h)
                out = self._linear(h, down_w[e], None if down_b is None else down_b[e])
                if getattr(m, "has_post_expert_norm", False):
                    out = m.post_expert_norm(out)
                outs.append(out)
            start += n
        if not outs:
            # Keep the graph connected so an all-null batch still backprops (with zero gradients).
            return rows.new_zeros(0, rows.shape[1]).to(dtype) + 0 * (up_w.sum() + down_w.sum()).to(dtype)
        return torch.cat(outs, dim=0).to(dtype)


def adamoe_experts_forward(
    self: nn.Module, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
) -> torch.Tensor:
    """Experts forward for index ``E..E+m-1`` = null experts (see module docstring)."""
    routing = Routing(
        indices=top_k_index,
        weights=top_k_weights,
        probs=_NO_SCORES,
        logits=_NO_SCORES,
        num_experts=self.num_experts,
        num_null=getattr(self, NUM_NULL_ATTR, 0),
        null_type=getattr(self, NULL_TYPE_ATTR, "zero"),
    )
    fused = uses_fused_swiglu(self)
    if fused and torch.is_grad_enabled() and parametrize.is_parametrized(self):
        _warn_merged(type(self).__name__.removeprefix("Parametrized"))
    backend = _FusedSwiGLU(self) if fused else _ExpertLoop(self)
    return dispatch(hidden_states, routing, backend).to(hidden_states.dtype)


@functools.cache
def _warn_merged(experts_class: str) -> None:
    """Say once that a parametrised (PEFT ``ParamWrapper``) expert weight is merged on every forward."""
    warnings.warn(
        f"experts: {experts_class} weights are parametrised (PEFT's ParamWrapper): W + ΔW is merged on "
        "every forward and kept for backward, a copy of the experts per layer; build the LoRA config "
        "with adamoe.hf.peft_utils.lora_config_for and reload adapters with adamoe.hf.peft_utils.load_adapter",
        stacklevel=3,
    )


def register() -> str:
    """Register the implementation in transformers' registry (idempotent); returns its name."""
    ExpertsInterface.register(EXPERTS_IMPLEMENTATION, adamoe_experts_forward)
    return EXPERTS_IMPLEMENTATION


register()
