"""What bounds the speed targets, as numbers (``benchmarks/profile_bounds.py``).

Every candidate of a section runs in the same rotated rounds (:func:`adamoe.bench.timing.timed_rounds`),
fp32, CPU; ratios are paired per round with bootstrap 95% CIs:

- **training** (:func:`gemm_shape_rates`): each of the six expert GEMMs of a SwiGLU MoE forward+backward
  as ONE ``torch.mm`` over all N rows (what the limit of :mod:`adamoe.bench.limit` prices) and as E
  per-group mms (what grouped backends run); the layer predicted at the per-group rates vs the limit.
- **decode** (:func:`decode_bounds`): our fused kernel, BLAS GEMV (``torch.mv``) and a plain ``sum`` over
  the same chosen experts' weights: can a matrix-vector product stream at a plain read's rate at all?
  ``kernel_no_prefetch`` is the same kernel built with its software prefetch compiled out
  (``kernels.load(prefetch=False)``): the prefetch's A/B in the same rounds.
- **prefill**: :mod:`adamoe.bench.profile_ops` (``torch.profiler`` categories of one forward, eager and
  ``torch.compile``d).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from adamoe.bench.decode import in_turn, same_tensors_read
from adamoe.bench.limit import SWIGLU_GEMMS, LimitProbes, Probe, limit_probes, limit_rounds, swiglu_gemms
from adamoe.bench.paired import fmt_ratio, paired_ratio, per_round
from adamoe.bench.profile_ops import prefill_bounds, prefill_lines
from adamoe.bench.provenance import stamped
from adamoe.bench.settings import BenchSettings, ModelBenchSettings
from adamoe.bench.timing import timed_rounds
from adamoe.bench.training import moe_layer, train_step_fn
from adamoe.experts.backend import AUTO

__all__ = ["PROFILE_SECTIONS", "decode_bounds", "gemm_shape_rates", "profile_table", "run_profiles"]

PROFILE_SECTIONS = ("training", "decode", "prefill")


def gemm_shape_rates(s: BenchSettings, *, num_experts: int = 8, top_k: int = 2) -> dict[str, Any]:
    """Each expert GEMM of the training section as one mm over all N = T·k rows and as E per-group mms.

    Group rows are the routing counts of the bench's layer on its (T, H) input (sum N); each group has
    its own buffers and weights (:func:`swiglu_gemms` at its rows), as the grouped backends have. Timed in
    the same rounds: the limit's probes, the per-group GEMM sets and our ``grouped`` layer fwd+bwd.
    """
    torch.manual_seed(s.seed)
    x, grad = torch.randn(s.tokens, s.hidden), torch.randn(s.tokens, s.hidden)
    dims = {"hidden": s.hidden, "ffn": s.ffn}
    layer = moe_layer(s, num_experts=num_experts, num_null=0, top_k=top_k, backend="grouped", **dims)
    with torch.no_grad():
        layer(x)
    counts = [int(c) for c in layer.last_routing.expert_counts()]
    big = limit_probes(tokens=s.tokens, num_experts=num_experts, top_k=top_k, **dims)
    gen = torch.Generator().manual_seed(s.seed + 1)
    groups = [swiglu_gemms(rows=c, generator=gen, **dims) for c in counts if c]
    fns = {f"big:{name}": fn for name, fn in big.fns.items()}
    fns.update({f"grouped:{name}": in_turn([g[name][0] for g in groups]) for name in SWIGLU_GEMMS})
    fns["adamoe_grouped"] = train_step_fn(layer, x, grad)
    times = timed_rounds(fns, warmup=s.warmup, repeats=s.repeats, threads=s.threads)
    out = _shape_summary(big, groups, times, seed=s.seed)
    out["shape"] = {"tokens": s.tokens, **dims, "experts": num_experts, "top_k": top_k}
    out["group_rows"] = counts
    out["times"] = times
    return out


def _shape_summary(
    big: LimitProbes, groups: list[dict[str, Probe]], times: dict[str, list[float]], *, seed: int
) -> dict[str, Any]:
    """Rates per shape (medians), the limit, and per round the grouped prediction: the limit with its six
    expert GEMMs replaced by their per-group sums (router GEMMs and element-wise bytes as in the limit)."""
    limit = limit_rounds(big, {name: times[f"big:{name}"] for name in big.fns})
    big_six = per_round(times, *(f"big:{n}" for n in SWIGLU_GEMMS))
    grouped_six = per_round(times, *(f"grouped:{n}" for n in SWIGLU_GEMMS))
    predicted = [lim - b + g for lim, b, g in zip(limit["per_round"], big_six, grouped_six, strict=True)]
    med = {k: statistics.median(v) for k, v in times.items()}
    shapes = {}
    for name in SWIGLU_GEMMS:
        f, gf = big.flops[name], sum(g[name][1] for g in groups)
        b, g = med[f"big:{name}"], med[f"grouped:{name}"]
        shapes[name] = {"flops": f, "grouped_flops": gf, "big_seconds": b, "grouped_seconds": g}
        shapes[name] |= {"big_GFLOPs": f / b / 1e9, "grouped_GFLOPs": gf / g / 1e9}
        shapes[name]["grouped_vs_big"] = paired_ratio(
            times[f"grouped:{name}"], times[f"big:{name}"], seed=seed
        )
    layer, lim, pred = times["adamoe_grouped"], limit["per_round"], statistics.median(predicted)
    return {
        "shapes": shapes,
        "limit": limit,
        "predicted_grouped_seconds": pred,
        "layer_seconds": med["adamoe_grouped"],
        "ratios": {
            "grouped_predicted_vs_limit": paired_ratio(predicted, lim, seed=seed),
            "layer_vs_limit": paired_ratio(layer, lim, seed=seed),
            "layer_vs_grouped_predicted": paired_ratio(layer, predicted, seed=seed),
        },
        "gap_explained": (pred - limit["limit_seconds"]) / (med["adamoe_grouped"] - limit["limit_seconds"])
        if med["adamoe_grouped"] != limit["limit_seconds"]
        else float("nan"),
    }


def _decode_fns(
    layer: nn.Module, x: torch.Tensor, chosen: list[int], probe_bytes: int
) -> tuple[dict[str, Callable[[], Any]], dict[str, float]]:
    """The decode candidates for (1, H) ``x`` and the bytes each reads: the bench's layer call, the fused
    kernel on the same routing (and its build without the software prefetch), ``torch.mv`` over each chosen expert's (2I, H) gate_up then (H, I) down, a
    ``sum`` of those same tensors, a ``sum`` of one buffer of their total size and of a streaming probe."""
    from adamoe.experts import kernels

    r = layer.last_routing
    gate_up, down = layer.experts.gate_up_proj.detach(), layer.experts.down_proj.detach()
    read_same, weight_bytes = same_tensors_read(layer, chosen)
    xv, h = x[0], torch.randn(down.shape[2])
    gu_out, out = torch.empty(len(chosen), gate_up.shape[1]), torch.empty(len(chosen), down.shape[1])

    def gemv() -> None:
        for j, e in enumerate(chosen):
            torch.mv(gate_up[e], xv, out=gu_out[j])
            torch.mv(down[e], h, out=out[j])

    same, probe = torch.ones(int(weight_bytes) // 4), torch.ones(probe_bytes // 4)
    fns: dict[str, Callable[[], Any]] = {"layer": lambda: layer(x)}
    if kernels.available():
        fns["kernel"] = lambda: kernels.moe_decode(x, gate_up, down, r.indices, r.weights, r.num_experts)
    if kernels.available(prefetch=False):
        fns["kernel_no_prefetch"] = lambda: kernels.moe_decode(
            x, gate_up, down, r.indices, r.weights, r.num_experts, prefetch=False
        )
    fns["blas_gemv"] = gemv
    fns["read_experts_sum"] = read_same
    fns["read_same_size"] = same.sum
    fns["read_probe"] = probe.sum
    nbytes = {name: weight_bytes for name in fns} | {"read_probe": float(probe.numel() * 4)}
    return fns, nbytes


def decode_bounds(s: BenchSettings, *, thread_counts: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The decode shape (``decode_*`` of ``s``) at T = 1: GB/s of our kernel, BLAS GEMV and plain reads of
    the same chosen experts' weights, at each of ``thread_counts`` (default: 1 and ``s.threads``), and
    each candidate's paired ratio to the ``.sum()`` over the same tensors in the same rounds; with both
    kernel builds, also ``kernel``'s paired ratio to ``kernel_no_prefetch`` (``vs_no_prefetch``)."""
    torch.manual_seed(s.seed)
    E, k, dims = s.decode_experts, s.decode_k, {"hidden": s.decode_hidden, "ffn": s.decode_ffn}
    layer = moe_layer(s, num_experts=E, num_null=0, top_k=k, backend=AUTO, **dims)
    x = torch.randn(1, s.decode_hidden, generator=torch.Generator().manual_seed(s.seed))
    with torch.no_grad():
        layer(x)
    r = layer.last_routing
    chosen = [int(e) for e in r.indices[r.true_mask()].unique()]
    fns, nbytes = _decode_fns(layer, x, chosen, (1 << 26) if s.quick else (1 << 30))
    rows = {}
    for t in thread_counts or tuple(dict.fromkeys((1, s.threads))):
        with torch.no_grad():
            times = timed_rounds(fns, warmup=s.warmup + 2, repeats=s.decode_repeats, threads=t)
        rows[t] = {}
        for name, ts in times.items():
            sec = statistics.median(ts)
            same = paired_ratio(ts, times["read_experts_sum"], seed=s.seed)
            rows[t][name] = {"ms": sec * 1e3, "GBps": nbytes[name] / sec / 1e9, "vs_same_tensors": same}
        if "kernel" in times and "kernel_no_prefetch" in times:  # the prefetch's A/B, round by round
            ab = paired_ratio(times["kernel"], times["kernel_no_prefetch"], seed=s.seed)
            rows[t]["kernel"]["vs_no_prefetch"] = ab
    blas = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return {
        "shape": {**dims, "experts": E, "top_k": k, "tokens": 1},
        "chosen_experts": chosen,
        "weight_MB": nbytes["layer"] / 1e6,
        "blas": blas.group(1) if blas else "unknown",
        "threads": rows,
    }


def run_profiles(
    layer: BenchSettings,
    model: ModelBenchSettings,
    *,
    sections: tuple[str, ...] = PROFILE_SECTIONS,
    batch: int,
    seq: int,
    decode_threads: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """The chosen profile sections on ``layer.threads`` threads, by section, with ``provenance``."""

    def run() -> dict[str, Any]:
        out: dict[str, Any] = {"quick": layer.quick, "threads": layer.threads}
        if "training" in sections:
            out["training"] = gemm_shape_rates(layer)
        if "decode" in sections:
            out["decode"] = decode_bounds(layer, thread_counts=decode_threads)
        if "prefill" in sections:
            out["prefill"] = prefill_bounds(model, batch=batch, seq=seq, threads=layer.threads)
        return out

    return stamped(layer.threads, run)


def profile_table(result: dict[str, Any]) -> list[str]:
    """Markdown tables of whichever sections ``result`` holds (keys ``training``, ``decode``, ``prefill``)."""
    formats = {"training": _training_lines, "decode": _decode_lines, "prefill": prefill_lines}
    return [line for key, fmt in formats.items() if key in result for line in fmt(result[key])]


def _training_lines(tr: dict[str, Any]) -> list[str]:
    lim, r = tr["limit"], tr["ratios"]
    lines = [
        f"### Training shape: each GEMM as one mm over N rows ('big') vs per-group mms (rows {tr['group_rows']})",
        "| GEMM | GFLOP | big ms | big GFLOP/s | grouped ms | grouped GFLOP/s | grouped / big |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in tr["shapes"].items():
        b, g = v["big_seconds"], v["grouped_seconds"]
        lines.append(
            f"| {name} | {v['flops'] / 1e9:.2f} | {b * 1e3:.1f} | {v['big_GFLOPs']:.1f} | {g * 1e3:.1f} | "
            f"{v['grouped_GFLOPs']:.1f} | {fmt_ratio(v['grouped_vs_big'])} |"
        )
    return [
        *lines,
        "",
        f"limit {lim['limit_seconds'] * 1e3:.1f} ms (each GEMM at its own one-mm rate); at the per-group rates "
        f"{tr['predicted_grouped_seconds'] * 1e3:.1f} ms ({fmt_ratio(r['grouped_predicted_vs_limit'])}×); "
        f"measured adamoe grouped {tr['layer_seconds'] * 1e3:.1f} ms ({fmt_ratio(r['layer_vs_limit'])}×; "
        f"{fmt_ratio(r['layer_vs_grouped_predicted'])}× the per-group prediction): the per-group GEMM rates "
        f"account for {tr['gap_explained']:.0%} of the layer's gap to the limit (medians).",
        "",
    ]


def _decode_lines(de: dict[str, Any]) -> list[str]:
    lines = [
        f"### Decode T=1: {len(de['chosen_experts'])} experts, {de['weight_MB']:.1f} MB of weights (BLAS {de['blas']})",
        "| threads | candidate | ms | GB/s | × `.sum()` of the same tensors |",
        "|---:|---|---:|---:|---:|",
    ]
    for t, row in de["threads"].items():
        lines += [
            f"| {t} | {name} | {v['ms']:.2f} | {v['GBps']:.1f} | {fmt_ratio(v['vs_same_tensors'])} |"
            for name, v in row.items()
        ]
    ab = {
        t: row["kernel"]["vs_no_prefetch"]
        for t, row in de["threads"].items()
        if "vs_no_prefetch" in row.get("kernel", {})
    }
    if ab:
        lines += [
            "",
            "Prefetch A/B, kernel / kernel_no_prefetch paired per round: "
            + "; ".join(f"{t} thread(s) {fmt_ratio(r)}×" for t, r in ab.items()),
        ]
    return [*lines, ""]
