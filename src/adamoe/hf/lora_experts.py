"""PEFT LoRA on fused 3D experts that hands the low-rank factors to the kernel instead of merging.

Why (issue 19, item 3): PEFT's ``ParamWrapper`` (what ``target_parameters`` builds) adapts
``gate_up_proj`` (E, 2I, H) and ``down_proj`` (E, H, I) by registering a parametrisation that returns
``W + ΔW`` for the duration of the forward; the grouped GEMM then saves that merged tensor for backward,
a full copy of every layer's experts (≈ 2.8 GB per Mixtral-8x7B layer in bf16).

:class:`ParamWrapper` here subclasses PEFT's and is registered through PEFT's own extension point for
layer types (``LoraConfig._register_custom_module``, which :func:`adamoe.hf.peft_utils.lora_config_for`
calls for every experts class of the model). It has the same parameters, so the same
``adapter_model.safetensors`` keys, and the same ``merge``/``unmerge``/``merge_and_unload`` (inherited:
``W += get_delta_weight``). Only its forward differs: when the "adamoe" experts implementation runs the
module (:func:`adamoe.hf.experts_impl.takes_low_rank`), it publishes the factors
``A`` (E, r, in), ``B`` (E, out, r) and ``scaling`` on the experts module (:data:`LORA_ATTR`) and the
kernel adds ``s·(x·A_eᵀ)·B_eᵀ`` beside the frozen ``x·W_eᵀ`` (:mod:`adamoe.experts.low_rank`).
Anything else (another experts implementation, several active adapters, a transposed layout, one expert)
takes ``ParamWrapper``'s merge, unchanged.

PEFT's 3D layout, read off ``ParamWrapper.get_delta_weight`` (einsum ``"o r e, e r i -> e o i"``):
``lora_A.weight`` (E·r, in) rows are expert-major, ``lora_B.weight`` (out, r·E) columns are rank-major.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from peft.tuners.lora import layer as peft_lora

from adamoe.experts.low_rank import LowRank
from adamoe.hf.experts_impl import LORA_ATTR, takes_low_rank

__all__ = ["ParamWrapper"]


class ParamWrapper(peft_lora.ParamWrapper):
    """``peft``'s ``ParamWrapper`` for a fused expert weight, whose forward never merges ``W + ΔW``.

    Named like its base on purpose: PEFT recognises parameter wrappers by class name when it nests the
    second fused weight's wrapper inside the first (``tuners_utils``: ``__class__.__name__ ==
    "ParamWrapper"``), so another name would be refused as "not a valid target".
    """

    def low_rank(self, active_adapters: list[str]) -> LowRank | None:
        """The active adapter's update as (E, r, in) / (E, out, r) views of ``lora_A`` / ``lora_B``, or
        None where this wrapper must merge like ``ParamWrapper``."""
        adapters = [a for a in active_adapters if a in self.lora_A]
        if len(adapters) != 1 or self.num_experts < 2 or not self._did_swap_in_out_features:
            return None  # several adapters / a 2D weight / an (E, in, out) layout: PEFT's merge
        if not takes_low_rank(self.get_base_layer()):
            return None
        (name,) = adapters
        a = self.lora_A[name].weight.reshape(self.num_experts, -1, self.in_features)
        b = self.lora_B[name].weight.reshape(self.out_features, -1, self.num_experts).permute(2, 0, 1)
        return LowRank(a=a, b=b, scaling=float(self.scaling[name]))

    @contextmanager
    def _activate_lora(self, active_adapters: list[str]) -> Iterator[None]:
        """For this forward, the experts module carries the factors instead of a merged parametrisation.

        Nested wrappers (one per fused weight) each add their own entry; the previous dict is restored
        on exit, so nothing outlives the forward (activation checkpointing re-enters it on recompute)."""
        low_rank = self.low_rank(active_adapters)
        if low_rank is None:
            with super()._activate_lora(active_adapters):
                yield
            return
        experts = self.get_base_layer()
        before = getattr(experts, LORA_ATTR, None)
        setattr(experts, LORA_ATTR, {**(before or {}), self.parameter_name: low_rank})
        try:
            yield
        finally:
            if before is None:
                delattr(experts, LORA_ATTR)
            else:
                setattr(experts, LORA_ATTR, before)
