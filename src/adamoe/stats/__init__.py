"""Routing statistics aggregated over many forwards: load, counts, %FLOPs, bypass, entropy, sharpness.

- :mod:`adamoe.stats.metrics`: per-token metrics (``experts_to_mass``, ``router_entropy``) and FLOPs.
- :mod:`adamoe.stats.layer_stats`: the one packed layout of per-layer sums (``pack_tokens``,
  ``pack_rows``, :class:`LayerStats`) and the one model-level summary (``summarise_layers``).
- :mod:`adamoe.stats.recorders`: the listeners that feed it (``RoutingRecorder``, the per-item
  ``ItemRoutingRecorder``, the trainer's ``RoutingTap``).
Only sums are kept, so stats from many batches, items or processes add up exactly; they stay on the
device while recording and are all-reduced over processes when a summary is read.
"""

from adamoe.routing.source import collect_routings, routing_sources
from adamoe.stats.layer_stats import (
    SCALARS,
    ItemPacks,
    LayerShapes,
    LayerStats,
    add_layers,
    pack_rows,
    pack_tokens,
    packed_width,
    reduce_layers,
    summarise_layers,
    summarise_packs,
)
from adamoe.stats.metrics import SHARPNESS_BINS, experts_to_mass, flops_report, router_entropy
from adamoe.stats.recorders import (
    ItemRoutingRecorder,
    RoutingListener,
    RoutingRecorder,
    RoutingTap,
    RoutingTerms,
    mean_load,
)

iter_routing_sources = routing_sources  # the name consumers have used since the first release

__all__ = [
    "SCALARS",
    "SHARPNESS_BINS",
    "ItemPacks",
    "ItemRoutingRecorder",
    "LayerShapes",
    "LayerStats",
    "RoutingListener",
    "RoutingRecorder",
    "RoutingTap",
    "RoutingTerms",
    "add_layers",
    "collect_routings",
    "experts_to_mass",
    "flops_report",
    "iter_routing_sources",
    "mean_load",
    "pack_rows",
    "pack_tokens",
    "packed_width",
    "reduce_layers",
    "router_entropy",
    "routing_sources",
    "summarise_layers",
    "summarise_packs",
]
