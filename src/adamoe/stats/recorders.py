"""Everything that listens to routing while a model runs: the one place recorders live.

- :class:`RoutingListener` attaches a callback to every :class:`~adamoe.routing.source.RoutingSource`
  while used as a context, and removes it after.
- :class:`RoutingRecorder` folds every forward into one :class:`LayerStats` per layer.
- :class:`ItemRoutingRecorder` keeps the same sums *per evaluated item* (so a cached item keeps its
  routing when a run resumes): it is told which batch row is which item and which tokens are real.
- :class:`RoutingTap` is the trainer's: it keeps this forward's routings graph-attached for the aux and
  z losses, drops padding, and folds them into a run-level recorder.
All three add up :func:`~adamoe.stats.layer_stats.pack_tokens` rows, so their figures agree exactly.
None reads anything back to the host while it records (see :mod:`adamoe.stats.layer_stats`): the sums
stay on the device until a summary (or ``ItemRoutingRecorder.items``) is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adamoe.losses import routing_aux_loss, z_loss
from adamoe.routing.base import Routing
from adamoe.routing.source import RoutingCallback, routing_sources
from adamoe.stats.layer_stats import (
    ItemPacks,
    LayerShapes,
    LayerStats,
    pack_rows,
    packed_width,
    reduce_layers,
    summarise_layers,
)

__all__ = [
    "ItemRoutingRecorder",
    "RoutingListener",
    "RoutingRecorder",
    "RoutingTap",
    "RoutingTerms",
    "mean_load",
]


class RoutingListener:
    """Attaches ``self._callback(name)`` to every routing source of a model while used as a context.

    The one place that knows how callbacks are added to and removed from ``routing_callbacks``.
    """

    def __init__(self, model: nn.Module) -> None:
        self.sources = dict(routing_sources(model))
        self._callbacks: dict[str, RoutingCallback] = {}

    def _callback(self, name: str) -> RoutingCallback:
        raise NotImplementedError

    def __enter__(self):
        for name, module in self.sources.items():
            cb = self._callbacks[name] = self._callback(name)
            module.routing_callbacks.append(cb)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, module in self.sources.items():
            cb = self._callbacks.pop(name, None)
            if cb is not None and cb in module.routing_callbacks:
                module.routing_callbacks.remove(cb)


def _require_sources(listener: RoutingListener, why: str) -> None:
    if not listener.sources:
        raise ValueError(f"model: no MoE layers with routing_callbacks found ({why})")


class RoutingRecorder(RoutingListener):
    """Collects :class:`LayerStats` for every routing source in ``model`` while active.

    >>> with RoutingRecorder(model, baseline_k=2) as rec:
    ...     model(input_ids)
    >>> rec.summary()["load"]
    """

    def __init__(self, model: nn.Module, *, baseline_k: int | None = None, keep_tokens: bool = False) -> None:
        super().__init__(model)
        _require_sources(self, "convert the model first")
        self.baseline_k = baseline_k
        self.keep_tokens = keep_tokens
        self.layers: dict[str, LayerStats] = {}
        self.token_mask: torch.Tensor | None = None  # (T,) bool for the next forwards: False = padding

    def record(self, name: str, routing: Routing, *, mask: torch.Tensor | None = None) -> None:
        """Add ``routing``'s tokens (those where ``mask`` (T,) bool is True, if given) to layer ``name``."""
        stats = self.layers.get(name)
        if stats is None:
            stats = self.layers[name] = LayerStats(routing.num_experts, routing.num_null)
        stats.update(routing, keep_tokens=self.keep_tokens, mask=mask)

    def _callback(self, name: str) -> RoutingCallback:
        def record(module: nn.Module, routing: Routing) -> None:
            mask = self.token_mask
            if mask is not None and mask.numel() == routing.num_tokens:
                self.record(name, routing, mask=mask)
            else:
                self.record(name, routing)

        return record

    def on_batch(self, info: Any) -> None:
        """Scorer hook: mask out padding of the forward that follows (only the new tokens' columns)."""
        mask = info.attention_mask
        self.token_mask = mask[:, -info.input_ids.shape[1] :].reshape(-1).bool()

    def reset(self) -> None:
        """Forget every layer's sums (start a new measurement)."""
        self.layers.clear()

    def summary(self, *, across_processes: bool = True) -> dict[str, Any]:
        """Per-layer summaries plus model-level means (:func:`summarise_layers`), read to the host now.

        Under an initialised torch.distributed group of several processes (and ``across_processes``),
        the sums of all of them (:func:`~adamoe.stats.layer_stats.reduce_layers`): a collective that
        every process calls. This process's own sums are left as they are, so it can be called again.
        """
        layers = reduce_layers(self.layers) if across_processes else self.layers
        return summarise_layers(layers, baseline_k=self.baseline_k)


class ItemRoutingRecorder(RoutingListener):
    """Per-item routing sums over every routing source of ``model`` while active (a context manager).

    ``items[item][layer]`` is the packed vector of that item's real tokens; summing items and calling
    :func:`~adamoe.stats.layer_stats.summarise_packs` reproduces a :class:`RoutingRecorder` over the
    same forwards.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        _require_sources(self, "a dense model has no routing")
        self._items: dict[str, ItemPacks] = {}
        self.shapes: LayerShapes = {}
        self.unattributed_tokens = 0
        self._rows: tuple[str, ...] | None = None
        self._mask: torch.Tensor | None = None
        self._pending: dict[str, torch.Tensor] = {}  # layer -> (B, P) device sums of the current batch

    @property
    def items(self) -> dict[str, ItemPacks]:
        """item -> layer -> packed float64 sums; reading it moves the current batch's sums to the host."""
        self._flush()
        return self._items

    def set_batch(self, row_ids: Sequence[str], mask: torch.Tensor) -> None:
        """The next forwards process one row per ``row_ids`` entry; ``mask`` (B, L) marks the real tokens."""
        if mask.ndim != 2 or mask.shape[0] != len(row_ids):
            raise ValueError(f"mask: expected ({len(row_ids)}, L), got {tuple(mask.shape)}")
        self._flush()
        self._rows = tuple(row_ids)
        self._mask = mask.detach().to(torch.bool)

    def on_batch(self, info: Any) -> None:
        """Scorer hook (``score_multiple_choice(on_batch=...)``): rows are ``info.example_ids``."""
        self.set_batch(info.example_ids, info.attention_mask[:, -info.input_ids.shape[1] :])

    def _callback(self, name: str) -> RoutingCallback:
        def record(module: nn.Module, routing: Routing) -> None:
            rows, mask = self._rows, self._mask
            if rows is None or mask is None or routing.num_tokens != mask.numel():
                self.unattributed_tokens += routing.num_tokens  # no row map for this forward
                return
            self.shapes[name] = (routing.num_experts, routing.num_null)
            with torch.no_grad():
                packed = pack_rows(routing, mask)
            pending = self._pending.get(name)
            self._pending[name] = packed if pending is None else pending + packed.to(pending.device)

        return record

    def _flush(self) -> None:
        """Move the current batch's per-row sums to the host (one copy) and add them to their items."""
        if not self._pending or self._rows is None or self._mask is None:
            return
        names = list(self._pending)
        device = self._pending[names[0]].device
        host = torch.cat([self._pending[n].to(device) for n in names], dim=1).cpu().numpy()
        self._pending.clear()
        has_tokens = self._mask.any(dim=1).tolist()
        start = 0
        for name in names:
            width = packed_width(*self.shapes[name])
            block, start = host[:, start : start + width], start + width
            for b, item in enumerate(self._rows):
                if not has_tokens[b]:
                    continue
                layers = self._items.setdefault(item, {})
                layers[name] = layers[name] + block[b] if name in layers else block[b].copy()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._flush()
        self._rows = self._mask = None


@dataclass
class RoutingTerms:
    """Per-forward routing terms: aux and z losses summed over layers; load sums per layer.

    ``true_slots`` is an (L,) float64 tensor on the routings' device (in ``RoutingTap.names`` order), so
    the caller adds it up without a host read; ``tokens`` are host ints (known from shapes alone).
    """

    aux: torch.Tensor
    z: torch.Tensor
    true_slots: torch.Tensor
    tokens: list[int]


class RoutingTap(RoutingListener):
    """The trainer's listener: this forward's routings (graph-attached), folded into a run-level recorder.

    Subscribing to ``routing_callbacks`` means it sees every routing of the current forward and never a
    stale ``last_routing`` of a layer that did not run. Padding tokens are dropped before the losses and
    the load: they are not part of the data and would bias both. Which tokens are real is worked out once
    per forward in :meth:`start` (from a host mask, no device read); the layers then only gather rows.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.names = sorted(self.sources)
        self.recorder = RoutingRecorder(model) if self.sources else None
        self.token_mask: torch.Tensor | None = None
        self._keep: torch.Tensor | None = None  # (T_real,) int64 positions of the real tokens, or None
        self._routings: list[tuple[str, Routing]] = []

    @property
    def has_routing(self) -> bool:
        return bool(self.sources)

    def _callback(self, name: str) -> RoutingCallback:
        def record(_module: nn.Module, routing: Routing) -> None:
            self._routings.append((name, routing))

        return record

    def start(self, attention_mask: torch.Tensor | None) -> None:
        """Call before a forward: forget the previous routings, remember which tokens are real.

        Pass the mask as collated on the host: its positions are then found without reading the device.
        """
        self._routings.clear()
        self.token_mask = None if attention_mask is None else attention_mask.reshape(-1).bool()
        mask = self.token_mask
        self._keep = None if mask is None or bool(mask.all()) else mask.nonzero().squeeze(1)

    def _masked(self, routing: Routing) -> Routing:
        keep = self._keep
        if keep is not None and self.token_mask is not None and self.token_mask.numel() == routing.num_tokens:
            if keep.device != routing.indices.device:
                keep = self._keep = keep.to(routing.indices.device)
            return routing.select(keep)
        return routing

    def terms(self, *, aux_kind: str, record: bool = True) -> RoutingTerms:
        """Aux (``aux_kind``) and z losses summed over this forward's routings, plus per-layer load sums."""
        aux = torch.zeros(())
        z = torch.zeros(())
        slots: dict[str, torch.Tensor] = {}
        tokens = dict.fromkeys(self.names, 0)
        for name, routing in self._routings:
            routing = self._masked(routing)
            if aux_kind != "none":
                aux = aux + routing_aux_loss(routing, aux_kind)
            z = z + z_loss(routing.logits)
            used = routing.true_experts_per_token().sum().to(torch.float64)
            slots[name] = slots[name] + used.to(slots[name].device) if name in slots else used
            tokens[name] += routing.num_tokens
            if record and self.recorder is not None:
                self.recorder.record(name, routing)
        device = next(iter(slots.values())).device if slots else torch.device("cpu")
        zero = torch.zeros((), dtype=torch.float64, device=device)
        per_layer = [slots[n].to(device) if n in slots else zero for n in self.names]
        true_slots = torch.stack(per_layer) if per_layer else zero.new_zeros(0)
        return RoutingTerms(aux=aux, z=z, true_slots=true_slots, tokens=[tokens[n] for n in self.names])


def mean_load(true_slots: Sequence[float], tokens: Sequence[float]) -> float | None:
    """Mean over layers of true experts per token (the paper's Load); None for a dense model."""
    loads = [s / t for s, t in zip(true_slots, tokens) if t > 0]
    return sum(loads) / len(loads) if loads else None
