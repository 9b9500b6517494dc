"""The decode section of ``adamoe bench``: one MoE layer (OLMoE-like, E=64, top-8), forward only, at 1 and
8 tokens, against a same-round, same-bytes read.

Every variant is the whole layer call, routing included: ``adamoe`` is the fused path (router GEMV,
softmax, top-k and experts in one kernel call, ``MoELayer._fused_decode``), ``adamoe_unfused`` the same
layer with ``fused_decode = False`` (router, then dispatch's decode kernel), so ``fused_vs_unfused`` is
what the fusion saves.

Why a same-bytes read (issue 20): the old limit divided by a streaming probe of a 1 GiB buffer whose rate
moved 1.7× between runs, so the ratio measured the probe. Here the reference is ``.sum()`` over the very
weight tensors the step must read (each chosen expert's gate_up and down slices), timed in the same
rotated rounds: ``ratio[r] = t_variant[r] / t_sum_same_tensors[r]``, paired, with a bootstrap CI. The
1 GiB streaming probe still runs in the same rounds and gives a second, per-round bandwidth limit.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import torch

from adamoe.bench.paired import paired_ratio
from adamoe.bench.settings import BenchSettings
from adamoe.bench.timing import timed_rounds
from adamoe.bench.training import hf_block, jittered_nulls, moe_layer
from adamoe.experts.backend import AUTO
from adamoe.layer import MoELayer

__all__ = ["DECODE_TARGET", "bench_decode", "in_turn", "same_tensors_read"]

DECODE_TARGET = 1.25
"""Issue 20's target: a decode step at most 1.25× a same-round ``.sum()`` over the same weights."""


def in_turn(fns: list[Callable[[], Any]]) -> Callable[[], list[Any]]:
    """One callable that runs ``fns`` in order (timed as one candidate)."""
    return lambda: [fn() for fn in fns]


def same_tensors_read(layer: torch.nn.Module, experts: list[int]) -> tuple[Callable[[], Any], float]:
    """``.sum()`` over each listed expert's (2I, H) gate_up and (H, I) down weights, and its bytes."""
    gate_up, down = layer.experts.gate_up_proj.detach(), layer.experts.down_proj.detach()
    tensors = [t for e in experts for t in (gate_up[e], down[e])]
    return in_turn([t.sum for t in tensors]), float(sum(t.numel() * t.element_size() for t in tensors))


def _chosen(layer: torch.nn.Module, x: torch.Tensor, *, true_only: bool) -> list[int]:
    """The distinct experts a forward of ``x`` routes to (true experts only, for a layer with nulls)."""
    with torch.no_grad():
        layer(x)
    r = layer.last_routing
    idx = r.indices[r.true_mask()] if true_only else r.indices
    return sorted(int(e) for e in idx.unique())


def bench_decode(s: BenchSettings) -> dict[str, Any]:
    """Rows for 1 and 8 tokens: ours (top-k, and AdaMoE with E jittered nulls), transformers' backends."""
    torch.manual_seed(s.seed)
    E, k = s.decode_experts, s.decode_k
    dims = {"hidden": s.decode_hidden, "ffn": s.decode_ffn}
    ours = moe_layer(s, num_experts=E, num_null=0, top_k=k, backend=AUTO, **dims)
    ours_null = moe_layer(s, num_experts=E, num_null=E, top_k=k, backend=AUTO, **dims)
    jittered_nulls(ours, ours_null, seed=s.seed)
    unfused = MoELayer(router=ours.router, experts=ours.experts)
    unfused.fused_decode = False
    hf = {f"hf_{impl}": hf_block(ours, top_k=k, implementation=impl) for impl in ("grouped_mm", "eager")}
    probe = torch.ones(((1 << 26) if s.quick else (1 << 30)) // 4)
    rows = [
        _decode_row(s, torch.randn(tokens, s.decode_hidden), (ours, unfused), ours_null, hf, probe)
        for tokens in (1, 8)
    ]
    return {"skinny_kernel": _kernel_available(), "rows": rows, "target": DECODE_TARGET}


def _decode_row(
    s: BenchSettings,
    x: torch.Tensor,
    ours_pair: tuple[torch.nn.Module, torch.nn.Module],
    ours_null: torch.nn.Module,
    hf: dict[str, torch.nn.Module],
    probe: torch.Tensor,
) -> dict[str, Any]:
    """One (tokens, H) step through every variant, its two same-bytes reads and the streaming probe,
    in the same rounds; paired ratios to the same-bytes read and to the probe's bandwidth limit.
    ``ours_pair``: the top-k layer, and the same layer with its fused decode path off."""
    ours, unfused = ours_pair
    chosen, chosen_null = _chosen(ours, x, true_only=False), _chosen(ours_null, x, true_only=True)
    read, nbytes = same_tensors_read(ours, chosen)
    read_null, nbytes_null = same_tensors_read(ours_null, chosen_null)
    fns: dict[str, Callable[[], Any]] = {
        "read_same_tensors": read,
        "read_same_tensors_null": read_null,
        "read_probe": probe.sum,
        "adamoe": lambda: ours(x),
        "adamoe_unfused": lambda: unfused(x),
        "adamoe_null": lambda: ours_null(x),
    }
    fns.update({name: (lambda b=block: b(x.unsqueeze(0))) for name, block in hf.items()})
    with torch.no_grad():
        times = timed_rounds(fns, warmup=s.warmup + 2, repeats=s.decode_repeats, threads=s.threads)
    probe_bytes = float(probe.numel() * probe.element_size())
    variants = ["adamoe", "adamoe_unfused", "adamoe_null", *hf]
    reference = {
        name: "read_same_tensors_null" if name == "adamoe_null" else "read_same_tensors" for name in variants
    }
    own_bytes = {name: nbytes_null if name == "adamoe_null" else nbytes for name in variants}
    to_probe = {  # limit[r] = bytes / (probe bytes / t_probe[r])
        name: paired_ratio(
            times[name], [own_bytes[name] / probe_bytes * t for t in times["read_probe"]], seed=s.seed
        )
        for name in variants
    }
    med = {name: statistics.median(v) for name, v in times.items()}
    return {
        "tokens": x.shape[0],
        "distinct_experts": len(chosen),
        "distinct_true_experts_null": len(chosen_null),
        "bytes": {"adamoe": nbytes, "adamoe_null": nbytes_null},
        "times": times,
        "seconds": {name: med[name] for name in variants},
        "read_same_GBps": nbytes / med["read_same_tensors"] / 1e9,
        "probe_GBps": probe_bytes / med["read_probe"] / 1e9,
        "ratio_to_same_bytes": {
            name: paired_ratio(times[name], times[reference[name]], seed=s.seed) for name in variants
        },
        "ratio_to_probe_limit": to_probe,
        "ours_vs_hf": {name: paired_ratio(times["adamoe"], times[name], seed=s.seed) for name in hf},
        "fused_vs_unfused": paired_ratio(times["adamoe"], times["adamoe_unfused"], seed=s.seed),
    }


def _kernel_available() -> bool:
    from adamoe.experts import kernels

    return kernels.available()
