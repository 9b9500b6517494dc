"""Bytes that autograd keeps for backward in expert-shaped tensors: what LoRA on fused experts costs.

Why (issue 19, item 3): PEFT's ``target_parameters`` adapts a fused 3D expert weight by merging
``W + ΔW`` on every forward, and the grouped matmul then saves that merged (E, out, in) tensor for
backward, so every MoE layer keeps a second copy of its expert weights alive until backward. The
low-rank path (:mod:`adamoe.experts.low_rank`, :class:`adamoe.hf.lora_experts.ParamWrapper`) saves
only activations and the small LoRA factors. This module counts the difference:

- :func:`saved_expert_bytes`: run a forward under ``torch.autograd.graph.saved_tensors_hooks`` and sum
  the bytes of the storages that saved tensors keep alive, where a storage holds at least as many values
  as the smallest expert weight and is *not* a parameter's own (saving a parameter, or a view of it,
  costs nothing: it is alive anyway);
- :func:`merged_bytes_per_layer`: the same figure by formula for a Mixtral-shaped layer, for models too
  large to build here (bf16: 2 bytes per value).

Nothing here times anything; it runs on CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from adamoe.hf.experts_impl import NUM_NULL_ATTR

__all__ = ["SavedBytes", "expert_modules", "merged_bytes_per_layer", "saved_expert_bytes"]


@dataclass(frozen=True, kw_only=True)
class SavedBytes:
    """Expert-shaped bytes saved for backward by one forward: ``total`` over ``layers`` MoE layers and
    the shapes of the tensors counted."""

    total: int
    layers: int
    shapes: tuple[tuple[int, ...], ...]

    @property
    def per_layer(self) -> float:
        return self.total / self.layers


def expert_modules(model: nn.Module) -> list[nn.Module]:
    """The fused experts modules of a converted model (those :func:`adamoe.hf.convert.convert` marked)."""
    return [m for m in model.modules() if hasattr(m, NUM_NULL_ATTR) and hasattr(m, "down_proj")]


def saved_expert_bytes(
    model: nn.Module, forward: Callable[[], object], *, min_numel: int | None = None
) -> SavedBytes:
    """Run ``forward()`` and count what autograd saved in tensors of expert-weight size (see module doc).

    The threshold ``min_numel`` defaults to the numel of the smallest fused expert weight (E·H·I for
    ``down_proj``), so run a forward whose activations stay below it (a few tokens) or they are counted
    too; ``min_numel=0`` counts every saved tensor that is not a parameter (all activation bytes).
    """
    experts = expert_modules(model)
    if not experts:
        raise ValueError("model: no fused experts found; convert it first (adamoe.hf.convert.convert)")
    threshold = min(min(m.down_proj.numel(), m.gate_up_proj.numel()) for m in experts)
    threshold = threshold if min_numel is None else min_numel
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, tuple[int, tuple[int, ...]]] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()  # what a saved view keeps alive is its whole storage
        if storage.nbytes() >= threshold * t.element_size() and storage.data_ptr() not in params:
            seen[storage.data_ptr()] = (storage.nbytes(), tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return SavedBytes(
        total=sum(n for n, _ in seen.values()),
        layers=len(experts),
        shapes=tuple(shape for _, shape in seen.values()),
    )


def merged_bytes_per_layer(*, experts: int, hidden: int, intermediate: int, bytes_per_value: int = 2) -> int:
    """Bytes of the merged ``gate_up_proj`` (E, 2I, H) + ``down_proj`` (E, H, I) one layer saves: 3·E·H·I
    values (Mixtral-8x7B in bf16: 8 experts, H 4096, I 14336 -> 2.82 GB)."""
    return 3 * experts * hidden * intermediate * bytes_per_value
