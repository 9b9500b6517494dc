"""The packed per-layer routing sums and the one model-level summary built from them.

Everything the statistics report is a *sum over tokens*, so one layout serves every consumer: a packed
float64 vector per layer

    [tokens, true_slots, null_slots, bypass_tokens, entropy_sum, counts (E+m), sharpness (4 bins)]

:func:`pack_tokens` writes it once per token; :class:`LayerStats` (a running sum, all-reduced across
processes), :func:`pack_rows` (per batch row, for per-item caching) and :func:`summarise_packs` (sums of
cached items) all add those rows up, and :func:`summarise_layers` is the only model-level summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from adamoe.routing.base import Routing
from adamoe.stats.metrics import SHARPNESS_BINS, experts_to_mass, router_entropy

__all__ = [
    "SCALARS",
    "ItemPacks",
    "LayerShapes",
    "LayerStats",
    "pack_rows",
    "pack_tokens",
    "packed_width",
    "summarise_layers",
    "summarise_packs",
]

SCALARS = ("tokens", "true_slots", "null_slots", "bypass_tokens", "entropy_sum")

ItemPacks = dict[str, np.ndarray]
"""layer name -> packed float64 sums (the :func:`pack_tokens` layout) of one item."""

LayerShapes = dict[str, tuple[int, int]]
"""layer name -> (true experts E, null experts m)."""


def packed_width(num_experts: int, num_null: int) -> int:
    """Length P of the packed vector of a layer with E true and m null experts."""
    return len(SCALARS) + num_experts + num_null + len(SHARPNESS_BINS)


def pack_tokens(routing: Routing) -> torch.Tensor:
    """(T, P) float64: each token's contribution to the packed sums (see the module docstring)."""
    n = routing.num_experts + routing.num_null
    per_token = routing.true_experts_per_token().to(torch.float64)
    idx = routing.indices
    counts = torch.zeros(idx.shape[0], n, dtype=torch.float64, device=idx.device)
    counts.scatter_add_(1, idx.clamp(min=0), (idx >= 0).to(torch.float64))
    need = experts_to_mass(routing.probs, routing.num_experts).clamp(1, len(SHARPNESS_BINS)) - 1
    return torch.cat(
        [
            torch.ones_like(per_token)[:, None],
            per_token[:, None],
            routing.null_mask().sum(dim=-1).to(torch.float64)[:, None],
            (per_token == 0).to(torch.float64)[:, None],
            router_entropy(routing.probs).to(torch.float64)[:, None],
            counts,
            F.one_hot(need.to(idx.device), len(SHARPNESS_BINS)).to(torch.float64),
        ],
        dim=1,
    )


def pack_rows(routing: Routing, mask: torch.Tensor) -> torch.Tensor:
    """(B, P) float64 sums per batch row over the real tokens of a (B, L) forward (``mask`` (B, L) bool)."""
    rows, width = mask.shape
    if routing.num_tokens != rows * width:
        raise ValueError(f"routing: expected {rows}x{width} tokens, got {routing.num_tokens}")
    valid = mask.reshape(-1).to(torch.bool).to(routing.indices.device)
    row_of = torch.arange(rows, device=valid.device).repeat_interleave(width)[valid]
    feats = pack_tokens(routing.select(valid))
    out = torch.zeros(rows, feats.shape[1], dtype=torch.float64, device=feats.device)
    return out.index_add_(0, row_of, feats)


@dataclass
class LayerStats:
    """Running sums for one MoE layer: a packed (P,) float64 vector plus named views of it."""

    num_experts: int
    num_null: int
    sums: torch.Tensor = field(default=None)  # type: ignore[assignment]
    per_token_load: list[int] | None = None

    def __post_init__(self) -> None:
        if self.sums is None:
            self.sums = torch.zeros(packed_width(self.num_experts, self.num_null), dtype=torch.float64)

    @property
    def tokens(self) -> int:
        return int(self.sums[0])

    @property
    def true_slots(self) -> int:
        return int(self.sums[1])

    @property
    def null_slots(self) -> int:
        return int(self.sums[2])

    @property
    def bypass_tokens(self) -> int:
        return int(self.sums[3])

    @property
    def entropy_sum(self) -> float:
        return float(self.sums[4])

    @property
    def counts(self) -> torch.Tensor:
        """(E+m,) float64 slots that chose each expert."""
        return self.sums[len(SCALARS) : len(SCALARS) + self.num_experts + self.num_null]

    @property
    def sharpness(self) -> torch.Tensor:
        """(4,) float64 tokens per :data:`SHARPNESS_BINS` bin."""
        return self.sums[len(SCALARS) + self.num_experts + self.num_null :]

    @torch.no_grad()
    def update(self, routing: Routing, *, keep_tokens: bool = False) -> None:
        """Add a routing's tokens; ``keep_tokens`` also keeps each token's load (for histograms)."""
        rows = pack_tokens(routing.detach())
        self.sums += rows.sum(dim=0).cpu()
        if keep_tokens:
            self.per_token_load = (self.per_token_load or []) + rows[:, 1].long().tolist()

    def as_tensor(self) -> torch.Tensor:
        """(P,) float64 copy of the sums: add these across processes or items."""
        return self.sums.clone()

    def load_tensor(self, packed: torch.Tensor) -> None:
        """Replace the sums by a packed (P,) vector (from :meth:`as_tensor` or :func:`pack_rows`)."""
        want = packed_width(self.num_experts, self.num_null)
        if packed.shape != (want,):
            raise ValueError(f"packed: expected shape ({want},), got {tuple(packed.shape)}")
        self.sums = packed.detach().to(device="cpu", dtype=torch.float64).clone()

    @property
    def load(self) -> float:
        return self.true_slots / self.tokens if self.tokens else 0.0

    def summary(self, *, baseline_k: int | None = None) -> dict[str, Any]:
        """The layer's report: load, null and bypass rates, entropy, expert counts and shares, sharpness."""
        tokens = max(self.tokens, 1)
        true_counts = self.counts[: self.num_experts]
        out: dict[str, Any] = {
            "tokens": self.tokens,
            "load": self.load,
            "null_slots_per_token": self.null_slots / tokens,
            "bypass_rate": self.bypass_tokens / tokens,
            "entropy": self.entropy_sum / tokens,
            "expert_counts": self.counts.tolist(),
            "expert_fraction": (true_counts / true_counts.sum().clamp_min(1)).tolist(),
            "sharpness": dict(zip(SHARPNESS_BINS, (self.sharpness / tokens).tolist())),
        }
        if baseline_k:
            out["flops_pct"] = 100.0 * self.load / baseline_k
        return out


def summarise_layers(layers: Mapping[str, LayerStats], *, baseline_k: int | None = None) -> dict[str, Any]:
    """Per-layer summaries plus model-level means (load averaged over layers, as in the paper)."""
    per_layer = {name: s.summary(baseline_k=baseline_k) for name, s in layers.items()}
    if not per_layer:
        return {"layers": {}, "load": 0.0}
    n = len(per_layer)
    out: dict[str, Any] = {
        "layers": per_layer,
        "load": sum(s["load"] for s in per_layer.values()) / n,
        "bypass_rate": sum(s["bypass_rate"] for s in per_layer.values()) / n,
        "entropy": sum(s["entropy"] for s in per_layer.values()) / n,
        "tokens": int(next(iter(per_layer.values()))["tokens"]),
    }
    if baseline_k:
        out["flops_pct"] = 100.0 * out["load"] / baseline_k
        out["flops_reduction_pct"] = 100.0 - out["flops_pct"]
    return out


def _total(items: Iterable[Mapping[str, np.ndarray]], order: Sequence[str]) -> dict[str, np.ndarray]:
    totals: dict[str, np.ndarray] = {}
    for packs in items:
        for layer, vec in packs.items():
            totals[layer] = totals[layer] + vec if layer in totals else np.asarray(vec, dtype=np.float64)
    ranked = {name: i for i, name in enumerate(order)}
    return dict(sorted(totals.items(), key=lambda kv: (ranked.get(kv[0], len(ranked)), kv[0])))


def summarise_packs(
    items: Iterable[Mapping[str, np.ndarray]],
    shapes: Mapping[str, tuple[int, int]],
    *,
    baseline_k: int | None = None,
    order: Sequence[str] = (),
) -> dict[str, Any] | None:
    """:func:`summarise_layers` of the summed per-item packs (None when no item has routing).

    ``shapes`` gives (E, m) per layer; ``order`` the layer order of the summary (others follow by name).
    """
    layers: dict[str, LayerStats] = {}
    for name, vec in _total(items, order).items():
        if name not in shapes:
            raise ValueError(f"shapes: no (experts, nulls) entry for layer {name!r}")
        stats = layers[name] = LayerStats(*shapes[name])
        stats.load_tensor(torch.from_numpy(np.asarray(vec, dtype=np.float64)))
    return summarise_layers(layers, baseline_k=baseline_k) if layers else None
