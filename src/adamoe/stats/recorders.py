"""Everything that listens to routing while a model runs: the one place recorders live.

- :class:`RoutingListener` attaches a callback to every :class:`~adamoe.routing.source.RoutingSource`
  while used as a context, and removes it after.
- :class:`RoutingRecorder` folds every forward into one :class:`LayerStats` per layer.
- :class:`ItemRoutingRecorder` keeps the same sums *per evaluated item* (so a cached item keeps its
  routing when a run resumes): it is told which batch row is which item and which tokens are real.
- :class:`RoutingTap` is the trainer's: it keeps this forward's routings graph-attached for the aux and
  z losses, drops padding, and folds them into a run-level recorder.
All three add up :func:`~adamoe.stats.layer_stats.pack_tokens` rows, so their figures agree exactly.
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
from adamoe.stats.layer_stats import ItemPacks, LayerShapes, LayerStats, pack_rows, summarise_layers

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

    def record(self, name: str, routing: Routing) -> None:
        """Add ``routing`` (already restricted to real tokens) to layer ``name``'s sums."""
        stats = self.layers.get(name)
        if stats is None:
            stats = self.layers[name] = LayerStats(routing.num_experts, routing.num_null)
        stats.update(routing, keep_tokens=self.keep_tokens)

    def _callback(self, name: str) -> RoutingCallback:
        def record(module: nn.Module, routing: Routing) -> None:
            mask = self.token_mask
            if mask is not None and mask.numel() == routing.num_tokens:
                routing = routing.select(mask.reshape(-1).to(torch.bool))
            self.record(name, routing)

        return record

    def on_batch(self, info: Any) -> None:
        """Scorer hook: mask out padding of the forward that follows (only the new tokens' columns)."""
        mask = info.attention_mask
        self.token_mask = mask[:, -info.input_ids.shape[1] :].reshape(-1).bool()

    def reset(self) -> None:
        """Forget every layer's sums (start a new measurement)."""
        self.layers.clear()

    def all_reduce(self) -> None:
        """Sum the statistics over all processes of an initialised torch.distributed group."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        for name in sorted(self.layers):
            packed = self.layers[name].as_tensor()
            torch.distributed.all_reduce(packed)
            self.layers[name].load_tensor(packed)

    def summary(self) -> dict[str, Any]:
        """Per-layer summaries plus model-level means (:func:`summarise_layers`)."""
        return summarise_layers(self.layers, baseline_k=self.baseline_k)


class ItemRoutingRecorder(RoutingListener):
    """Per-item routing sums over every routing source of ``model`` while active (a context manager).

    ``items[item][layer]`` is the packed vector of that item's real tokens; summing items and calling
    :func:`~adamoe.stats.layer_stats.summarise_packs` reproduces a :class:`RoutingRecorder` over the
    same forwards.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        _require_sources(self, "a dense model has no routing")
        self.items: dict[str, ItemPacks] = {}
        self.shapes: LayerShapes = {}
        self.unattributed_tokens = 0
        self._rows: tuple[str, ...] | None = None
        self._mask: torch.Tensor | None = None

    def set_batch(self, row_ids: Sequence[str], mask: torch.Tensor) -> None:
        """The next forwards process one row per ``row_ids`` entry; ``mask`` (B, L) marks the real tokens."""
        if mask.ndim != 2 or mask.shape[0] != len(row_ids):
            raise ValueError(f"mask: expected ({len(row_ids)}, L), got {tuple(mask.shape)}")
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
                packed = pack_rows(routing.detach(), mask).cpu().numpy()
            has_tokens = mask.any(dim=1).tolist()
            for b, item in enumerate(rows):
                if not has_tokens[b]:
                    continue
                layers = self.items.setdefault(item, {})
                layers[name] = layers[name] + packed[b] if name in layers else packed[b].copy()

        return record

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._rows = self._mask = None


@dataclass
class RoutingTerms:
    """Per-forward routing terms: aux and z losses summed over layers; load sums per layer."""

    aux: torch.Tensor
    z: torch.Tensor
    true_slots: list[int]
    tokens: list[int]


class RoutingTap(RoutingListener):
    """The trainer's listener: this forward's routings (graph-attached), folded into a run-level recorder.

    Subscribing to ``routing_callbacks`` means it sees every routing of the current forward and never a
    stale ``last_routing`` of a layer that did not run. Padding tokens are dropped before the losses and
    the load: they are not part of the data and would bias both.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.names = sorted(self.sources)
        self.recorder = RoutingRecorder(model) if self.sources else None
        self.token_mask: torch.Tensor | None = None
        self._routings: list[tuple[str, Routing]] = []

    @property
    def has_routing(self) -> bool:
        return bool(self.sources)

    def _callback(self, name: str) -> RoutingCallback:
        def record(_module: nn.Module, routing: Routing) -> None:
            self._routings.append((name, routing))

        return record

    def start(self, attention_mask: torch.Tensor | None) -> None:
        """Call before a forward: forget the previous routings, remember which tokens are real."""
        self._routings.clear()
        self.token_mask = None if attention_mask is None else attention_mask.reshape(-1).bool()

    def _masked(self, routing: Routing) -> Routing:
        mask = self.token_mask
        if mask is not None and mask.numel() == routing.num_tokens and not bool(mask.all()):
            return routing.select(mask)
        return routing

    def terms(self, *, aux_kind: str, record: bool = True) -> RoutingTerms:
        """Aux (``aux_kind``) and z losses summed over this forward's routings, plus per-layer load sums."""
        aux = torch.zeros(())
        z = torch.zeros(())
        slots = dict.fromkeys(self.names, 0)
        tokens = dict.fromkeys(self.names, 0)
        for name, routing in self._routings:
            routing = self._masked(routing)
            if aux_kind != "none":
                aux = aux + routing_aux_loss(routing, aux_kind)
            z = z + z_loss(routing.logits)
            slots[name] += int(routing.true_experts_per_token().sum())
            tokens[name] += routing.num_tokens
            if record and self.recorder is not None:
                self.recorder.record(name, routing)
        return RoutingTerms(
            aux=aux,
            z=z,
            true_slots=[slots[n] for n in self.names],
            tokens=[tokens[n] for n in self.names],
        )


def mean_load(true_slots: Sequence[float], tokens: Sequence[float]) -> float | None:
    """Mean over layers of true experts per token (the paper's Load); None for a dense model."""
    loads = [s / t for s, t in zip(true_slots, tokens) if t > 0]
    return sum(loads) / len(loads) if loads else None
