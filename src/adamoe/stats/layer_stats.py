"""The packed per-layer routing sums and the one model-level summary built from them.

Everything the statistics report is a *sum over tokens*, so one layout serves every consumer: a packed
float64 vector per layer

    [tokens, true_slots, null_slots, bypass_tokens, entropy_sum, counts (E+m), sharpness (4 bins)]

:func:`pack_tokens` writes it once per token; :class:`LayerStats` (a running sum), :func:`pack_rows` (per
batch row, for per-item caching) and :func:`summarise_packs` (sums of cached items) all add those rows up,
and :func:`summarise_layers` is the only model-level summary.

The sums stay on the device of the routings they add up: recording reads nothing back to the host (a
host read per MoE layer would stall the GPU queue every layer and rule out CUDA graphs), padding is
masked arithmetically rather than by boolean indexing (which needs the count on the host). They move to
the host once, when a summary is read. :func:`reduce_layers` sums them over the processes of an
initialised ``torch.distributed`` group in one all-reduce (on CUDA under NCCL, which reduces nothing else).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn import functional as F

from adamoe.routing.base import Routing
from adamoe.stats.metrics import SHARPNESS_BINS, experts_to_mass, router_entropy
from adamoe.utils.distributed import multi_process, reduce_device

__all__ = [
    "SCALARS",
    "ItemPacks",
    "LayerShapes",
    "LayerStats",
    "add_layers",
    "pack_rows",
    "pack_tokens",
    "packed_width",
    "reduce_layers",
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


def _masked_rows(routing: Routing, mask: torch.Tensor | None) -> torch.Tensor:
    """(T, P) :func:`pack_tokens` rows with the tokens where ``mask`` (T,) is False zeroed (no host read)."""
    rows = pack_tokens(routing.detach())
    if mask is None:
        return rows
    keep = mask.reshape(-1, 1).to(device=rows.device, dtype=torch.bool)
    return torch.where(keep, rows, torch.zeros((), dtype=rows.dtype, device=rows.device))


def pack_rows(routing: Routing, mask: torch.Tensor) -> torch.Tensor:
    """(B, P) float64 sums per batch row over the real tokens of a (B, L) forward (``mask`` (B, L) bool)."""
    rows, width = mask.shape
    if routing.num_tokens != rows * width:
        raise ValueError(f"routing: expected {rows}x{width} tokens, got {routing.num_tokens}")
    feats = _masked_rows(routing, mask)
    return feats.reshape(rows, width, -1).sum(dim=1)


@dataclass
class LayerStats:
    """Running sums for one MoE layer: a packed (P,) float64 vector plus named views of it.

    ``sums`` lives on the device of the routings added (the CPU until the first); the named views read
    it back to the host, :meth:`summary` once for all of them.
    """

    num_experts: int
    num_null: int
    sums: torch.Tensor = field(default=None)  # type: ignore[assignment]
    # (T,) int64 per-token loads of each update with keep_tokens, -1 where a token was masked out
    _token_loads: list[torch.Tensor] = field(default_factory=list, init=False, repr=False)

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

    @property
    def per_token_load(self) -> list[int] | None:
        """Each recorded token's load, in order (updates with ``keep_tokens`` only; None if none): a host read."""
        if not self._token_loads:
            return None
        loads = torch.cat([t.to("cpu") for t in self._token_loads])
        return loads[loads >= 0].tolist()

    @torch.no_grad()
    def update(
        self, routing: Routing, *, keep_tokens: bool = False, mask: torch.Tensor | None = None
    ) -> None:
        """Add a routing's tokens, only those where ``mask`` (T,) bool is True if given; ``keep_tokens``
        also keeps each token's load (for histograms). Nothing is read back to the host."""
        rows = _masked_rows(routing, mask)
        if self.sums.device != rows.device:
            self.sums = self.sums.to(rows.device)
        self.sums += rows.sum(dim=0)
        if keep_tokens:
            load = rows[:, 1].long()
            if mask is not None:
                load = torch.where(mask.reshape(-1).to(load.device, torch.bool), load, -1)
            self._token_loads.append(load)

    def as_tensor(self) -> torch.Tensor:
        """(P,) float64 copy of the sums (on their device): add these across processes or items."""
        return self.sums.clone()

    def load_tensor(self, packed: torch.Tensor) -> None:
        """Replace the sums by a packed (P,) vector (from :meth:`as_tensor` or :func:`pack_rows`)."""
        want = packed_width(self.num_experts, self.num_null)
        if packed.shape != (want,):
            raise ValueError(f"packed: expected shape ({want},), got {tuple(packed.shape)}")
        self.sums = packed.detach().to(dtype=torch.float64).clone()

    @property
    def load(self) -> float:
        return self.true_slots / self.tokens if self.tokens else 0.0

    def summary(self, *, baseline_k: int | None = None) -> dict[str, Any]:
        """The layer's report: load, null and bypass rates, entropy, expert counts and shares, sharpness."""
        if self.sums.device.type != "cpu":  # one host read for every figure below
            return LayerStats(self.num_experts, self.num_null, self.sums.to("cpu")).summary(
                baseline_k=baseline_k
            )
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


def add_layers(*groups: Mapping[str, LayerStats]) -> dict[str, LayerStats]:
    """Per-layer sums of several groups of layer statistics, as new objects (layers in first-seen order)."""
    out: dict[str, LayerStats] = {}
    for group in groups:
        for name, stats in group.items():
            if name in out:
                out[name].sums = out[name].sums + stats.sums.to(out[name].sums.device)
            else:
                out[name] = LayerStats(stats.num_experts, stats.num_null, stats.sums.clone())
    return out


def reduce_layers(layers: Mapping[str, LayerStats]) -> dict[str, LayerStats]:
    """The sums of every process's ``layers``, as new objects; ``layers`` themselves are left as they are.

    A collective under an initialised group of more than one process: every process calls it, with its
    own layers (a layer some process never saw counts zero there). One ``all_gather_object`` of the layer
    shapes, then one all-reduce (SUM) of all layers packed into one vector. Without a group: a copy.
    Per-token loads (``keep_tokens``) stay with the process that recorded them.
    """
    if not multi_process():
        return add_layers(layers)
    shapes = {name: (s.num_experts, s.num_null) for name, s in layers.items()}
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, shapes)
    union: dict[str, tuple[int, int]] = {}
    for theirs in everyone:
        for name, shape in theirs.items():
            if union.setdefault(name, shape) != shape:
                raise ValueError(
                    f"layer {name}: (experts, nulls) {shape} on one process, {union[name]} on another"
                )
    names = sorted(union)  # the same packing order on every process
    device = reduce_device()
    flat = torch.cat(
        [
            layers[n].sums.to(device)
            if n in layers
            else torch.zeros(packed_width(*union[n]), dtype=torch.float64, device=device)
            for n in names
        ]
    )
    dist.all_reduce(flat)
    out: dict[str, LayerStats] = {}
    for name, part in zip(names, flat.split([packed_width(*union[n]) for n in names])):
        out[name] = LayerStats(*union[name], part.clone())
    order = [*layers, *(n for n in names if n not in layers)]
    return {name: out[name] for name in order}


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
