"""What bounds the three speed targets issue 12 missed, as numbers (``benchmarks/profile_bounds.py``).

Every candidate of a section is timed interleaved in the same rounds (medians), fp32, CPU:

- **training** (:func:`gemm_shape_rates`): each of the six GEMMs of a SwiGLU MoE forward+backward as ONE
  ``torch.mm`` over all rows (the rate the limit of :mod:`adamoe.speed_limit` prices every FLOP at) and as
  E per-group mms (what grouped backends run); the layer predicted at the per-group rates vs the limit.
- **decode** (:func:`decode_bounds`): our fused kernel, BLAS GEMV (``torch.mv``) and a plain ``sum`` over
  the same chosen experts' weights: can a matrix-vector product stream at the read probe's rate at all?
- **prefill** (:func:`profile_prefill`, :func:`prefill_bounds`): ``torch.profiler`` self CPU time per op
  category (:data:`OP_CATEGORIES`) of one forward beside the whole-model FLOPs prediction of
  :mod:`adamoe.speed_model`, the gap split into GEMM rate, attention and non-GEMM work.
"""

from __future__ import annotations

import contextlib
import functools
import re
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adamoe import speed_model as sm
from adamoe.dispatch import AUTO, interleaved_medians, interleaved_times
from adamoe.speed import BenchSettings, moe_layer, train_step_fn
from adamoe.speed_limit import LimitProbes, limit_probes, limit_seconds
from adamoe.speed_model import ModelBenchSettings, Variant, build_variants, prefill_point

GEMM_SHAPES = ("gemm_gate_up", "gemm_down", "gemm_grad_hidden", "gemm_grad_down", "gemm_grad_rows")
GEMM_SHAPES += ("gemm_grad_gate_up",)
"""The six GEMMs of a SwiGLU MoE forward+backward, named as in :func:`adamoe.speed_limit.limit_probes`."""

CATEGORIES = ("gemm", "attention", "norm", "elementwise", "dispatch", "copy", "other")

_OPS: dict[str, str] = {
    "gemm": "mm addmm bmm baddbmm matmul linear _grouped_mm mv addmv dot",
    "attention": "scaled_dot_product_attention _scaled_dot_product_flash_attention_for_cpu "
    "_scaled_dot_product_flash_attention _scaled_dot_product_efficient_attention "
    "_scaled_dot_product_attention_math softmax _softmax _safe_softmax masked_fill",
    "norm": "rms_norm _fused_rms_norm layer_norm native_layer_norm group_norm",
    "elementwise": "add sub mul div neg pow rsqrt sqrt exp cos sin tanh clamp silu sigmoid gelu relu mean sum "
    "max min cat where floor_divide eq ne lt le gt ge __and__ bitwise_and __or__ all any diff",
    "dispatch": "topk sort argsort index_select index_add index_put _index_put_impl index scatter scatter_add "
    "gather bincount histc cumsum nonzero unique _unique2 repeat_interleave one_hot searchsorted item "
    "_local_scalar_dense is_nonzero",
    "copy": "copy clone contiguous _to_copy to",
}
OP_CATEGORIES: dict[str, str] = {op: cat for cat, ops in _OPS.items() for op in ops.split()}
"""aten op name (no ``aten::`` prefix, in-place ``_`` suffix dropped) -> category; unlisted ops are ``other``
(views, allocations, the embedding look-up, ``arange``...). The project registers no custom dispatcher op:
its C++ decode kernel is a pybind call, invisible to the profiler (and not used at prefill)."""

NORM_SCOPE = "adamoe_profile::norm"
"""Profiler scope wrapped around every ``*Norm`` module: an RMSNorm is ``pow``/``mean``/``rsqrt``/``mul``
in transformers, so its ops count as ``norm`` instead of ``elementwise``/``copy``/``other`` inside it. The
scope's own self time (Python in the module) stays unattributed, as every other module's does."""


def classify(name: str, *, in_norm: bool = False) -> str:
    """The category of profiler event ``name`` (e.g. ``aten::addmm``, ``aten::mul_``), by
    :data:`OP_CATEGORIES`; element-wise, copy and other ops inside a norm module's scope are ``norm``."""
    op = name.removeprefix("aten::")
    category = OP_CATEGORIES.get(op) or OP_CATEGORIES.get(op.removesuffix("_")) or "other"
    return "norm" if in_norm and category in ("elementwise", "copy", "other") else category


@dataclass(frozen=True, kw_only=True)
class OpTime:
    """One profiler event: its name, self CPU milliseconds and whether it ran inside a norm scope."""

    name: str
    self_ms: float
    in_norm: bool = False


def category_ms(ops: Iterable[OpTime]) -> dict[str, float]:
    """Self milliseconds per category (every key of :data:`CATEGORIES`) and their ``total``.

    Self time (an event's time minus its children's) counts each instant once, so ``aten::linear`` ->
    ``aten::addmm`` is not counted twice and the categories sum to the total.
    """
    out = dict.fromkeys(CATEGORIES, 0.0)
    for op in ops:
        out[classify(op.name, in_norm=op.in_norm)] += op.self_ms
    out["total"] = sum(out[c] for c in CATEGORIES)
    return out


def _in_turn(fns: list[Callable[[], Any]]) -> Callable[[], list[Any]]:
    """One callable that runs ``fns`` in order (timed as one candidate)."""
    return lambda: [fn() for fn in fns]


def gemm_shape_rates(s: BenchSettings, *, num_experts: int = 8, top_k: int = 2) -> dict[str, Any]:
    """Each GEMM shape of the training section as one mm over all N = T·k rows and as E per-group mms.

    Group rows are the routing counts of the bench's layer on its (T, H) input (sum N, mean N/E); each
    group has its own buffers and weights (one :func:`limit_probes` at its rows), as the grouped backends
    have. Timed in the same rounds: the limit's own probes, both GEMM sets and our ``grouped`` layer
    forward+backward. Returns per shape FLOPs, ms and GFLOP/s both ways, the limit, and the grouped layer
    predicted at the per-group rates (+ router GEMM at peak + element-wise at bandwidth, as in the limit).
    """
    torch.manual_seed(s.seed)
    x, grad = torch.randn(s.tokens, s.hidden), torch.randn(s.tokens, s.hidden)
    dims = {"hidden": s.hidden, "ffn": s.ffn}
    layer = moe_layer(s, num_experts=num_experts, num_null=0, top_k=top_k, backend="grouped", **dims)
    with torch.no_grad():
        layer(x)
    counts = [int(c) for c in layer.last_routing.expert_counts()]
    probes = functools.partial(limit_probes, **dims)
    big = probes(
        tokens=s.tokens,
        num_experts=num_experts,
        top_k=top_k,
        largest_group=max(counts),
        probe_mb=16 if s.quick else 512,
    )
    groups = [probes(tokens=c, num_experts=1, top_k=1, largest_group=c, probe_mb=0) for c in counts if c]
    fns = {f"big:{name}": fn for name, fn in big.fns.items()}
    fns.update({f"grouped:{name}": _in_turn([g.fns[name] for g in groups]) for name in GEMM_SHAPES})
    fns["adamoe_grouped"] = train_step_fn(layer, x, grad)
    times = interleaved_times(fns, warmup=s.warmup, repeats=s.repeats)
    out = _shape_summary(big, groups, {k: statistics.median(v) for k, v in times.items()})
    out["shape"] = {"tokens": s.tokens, **dims, "experts": num_experts, "top_k": top_k}
    out["group_rows"] = counts
    return out


def _shape_summary(big: LimitProbes, groups: list[LimitProbes], med: dict[str, float]) -> dict[str, Any]:
    """Rates per shape, the limit and the predictions from the median seconds of :func:`gemm_shape_rates`."""
    limit = limit_seconds(big, {name: med[f"big:{name}"] for name in big.fns})
    shapes = {}
    for name in GEMM_SHAPES:
        f, gf, b, g = (
            big.flops[name],
            sum(p.flops[name] for p in groups),
            med[f"big:{name}"],
            med[f"grouped:{name}"],
        )
        shapes[name] = {"flops": f, "grouped_flops": gf, "big_seconds": b, "grouped_seconds": g}
        shapes[name].update({"big_GFLOPs": f / b / 1e9, "grouped_GFLOPs": gf / g / 1e9})
    router = (big.total_flops - sum(big.flops[n] for n in GEMM_SHAPES)) / (limit["peak_gemm_GFLOPs"] * 1e9)
    rest = router + limit["elementwise_seconds"]
    big_each = sum(v["big_seconds"] for v in shapes.values()) + rest
    pred = sum(v["grouped_seconds"] for v in shapes.values()) + rest
    lim, layer_s = limit["limit_seconds"], med["adamoe_grouped"]
    return {
        "shapes": shapes,
        "limit": limit,
        "router_seconds": router,
        "predicted": {"big_each_seconds": big_each, "grouped_seconds": pred},
        "layer_seconds": layer_s,
        "ratios": {
            "big_each_vs_limit": big_each / lim,
            "grouped_predicted_vs_limit": pred / lim,
            "layer_vs_limit": layer_s / lim,
            "layer_vs_grouped_predicted": layer_s / pred,
        },
        "gap_explained": (pred - lim) / (layer_s - lim) if layer_s != lim else float("nan"),
    }


def _decode_fns(
    layer: nn.Module, x: torch.Tensor, chosen: list[int], probe_bytes: int
) -> tuple[dict[str, Callable[[], Any]], dict[str, float]]:
    """The decode candidates for (1, H) ``x`` and the bytes each reads: the bench's layer call, the fused
    kernel on the same routing, ``torch.mv`` over each chosen expert's (2I, H) gate_up then (H, I) down, a
    ``sum`` of those same tensors, a ``sum`` of one buffer of their total size and of the bench's probe."""
    from adamoe.experts import kernels

    r = layer.last_routing
    gate_up, down = layer.experts.gate_up_proj.detach(), layer.experts.down_proj.detach()
    weight_bytes = float(len(chosen) * (gate_up[0].numel() + down[0].numel()) * 4)
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
    fns["blas_gemv"] = gemv
    fns["read_experts_sum"] = _in_turn([t.sum for e in chosen for t in (gate_up[e], down[e])])
    fns["read_same_size"] = same.sum
    fns["read_probe"] = probe.sum
    nbytes = {name: weight_bytes for name in fns} | {"read_probe": float(probe.numel() * 4)}
    return fns, nbytes


def decode_bounds(s: BenchSettings, *, thread_counts: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The decode shape (``decode_*`` of ``s``) at T = 1: GB/s of our kernel, BLAS GEMV and plain reads of
    the same chosen experts' weights, at each of ``thread_counts`` (default: 1 and ``s.threads``)."""
    torch.manual_seed(s.seed)
    E, k, dims = s.decode_experts, s.decode_k, {"hidden": s.decode_hidden, "ffn": s.decode_ffn}
    layer = moe_layer(s, num_experts=E, num_null=0, top_k=k, backend=AUTO, **dims)
    x = torch.randn(1, s.decode_hidden, generator=torch.Generator().manual_seed(s.seed))
    with torch.no_grad():
        layer(x)
    r = layer.last_routing
    chosen = [int(e) for e in r.indices[r.true_mask()].unique()]
    fns, nbytes = _decode_fns(layer, x, chosen, (1 << 26) if s.quick else (1 << 30))
    rows, before = {}, torch.get_num_threads()
    for t in thread_counts or tuple(dict.fromkeys((1, s.threads))):
        torch.set_num_threads(t)
        with torch.no_grad():
            med = interleaved_medians(fns, warmup=s.warmup + 2, repeats=s.decode_repeats)
        rows[t] = {name: {"ms": sec * 1e3, "GBps": nbytes[name] / sec / 1e9} for name, sec in med.items()}
    torch.set_num_threads(before)
    blas = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return {
        "shape": {**dims, "experts": E, "top_k": k, "tokens": 1},
        "chosen_experts": chosen,
        "weight_MB": nbytes["layer"] / 1e6,
        "blas": blas.group(1) if blas else "unknown",
        "threads": rows,
    }


@contextlib.contextmanager
def _norm_scopes(model: nn.Module) -> Iterator[None]:
    """Wrap every module whose class name ends in ``Norm`` in a :data:`NORM_SCOPE` profiler scope."""
    from torch.autograd.profiler import record_function

    stack: list[Any] = []
    enter = lambda *_: stack.append(record_function(NORM_SCOPE).__enter__())  # noqa: E731
    leave = lambda *_: stack.pop().__exit__(None, None, None)  # noqa: E731
    norms = [m for m in model.modules() if type(m).__name__.endswith("Norm")]
    handles = [h for m in norms for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _in_norm(event: Any) -> bool:
    while event is not None and event.name != NORM_SCOPE:
        event = event.cpu_parent
    return event is not None


def profiled_ops(model: nn.Module, input_ids: torch.Tensor) -> tuple[list[OpTime], float]:
    """The ops of one (B, S) ``input_ids`` forward (after one untimed warm-up) and its wall ms under the
    profiler (CPU activity, shapes not recorded; ops run on the calling thread, intra-op workers inside)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        model(input_ids=input_ids, use_cache=False)
        with _norm_scopes(model), profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
            t0 = time.perf_counter()
            model(input_ids=input_ids, use_cache=False)
            wall = (time.perf_counter() - t0) * 1e3
    events = [e for e in prof.events() if e.name != NORM_SCOPE]  # its self time is Python, as any module's
    ops = [OpTime(name=e.name, self_ms=e.self_cpu_time_total / 1e3, in_norm=_in_norm(e)) for e in events]
    return ops, wall


def profile_prefill(
    model: nn.Module, input_ids: torch.Tensor, *, gemm_GFLOPs: float, load: float | None = None
) -> dict[str, Any]:
    """Self CPU ms per category of one prefill forward of an HF causal LM over (B, S) ``input_ids``, beside
    the whole-model FLOPs prediction at ``gemm_GFLOPs`` (:func:`adamoe.eval.flops.forward_flops` at the
    mean context (S + 1)/2 and ``load``, measured when None), split into the GEMM FLOPs and the attention
    score FLOPs (QKᵀ, AV; run inside the attention ops). ``unattributed_ms`` = profiled wall - all ops'
    self time: Python, hooks and profiler overhead between ops."""
    from adamoe.eval.flops import forward_flops

    batch, seq = input_ids.shape
    if load is None:
        with torch.inference_mode():
            load = sm.measured_load(Variant(model=model), lambda m: m(input_ids=input_ids, use_cache=False))
    ops, wall = profiled_ops(model, input_ids)
    cats = category_ms(ops)
    parts = forward_flops(
        sm.decoder_shape(model), load=load, num_null=sm.num_null_of(model), context_len=(seq + 1) / 2
    )
    ms_per_flop_token = batch * seq / (gemm_GFLOPs * 1e6)  # per-token FLOPs -> ms of the whole batch
    top: dict[str, float] = {}
    for op in ops:
        top[op.name] = top.get(op.name, 0.0) + op.self_ms
    return {
        "load": load,
        "categories_ms": {c: cats[c] for c in CATEGORIES},
        "ops_total_ms": cats["total"],
        "profiled_wall_ms": wall,
        "unattributed_ms": wall - cats["total"],
        "predicted_ms": parts["total"] * ms_per_flop_token,
        "predicted_gemm_ms": (parts["total"] - parts["attention_scores"]) * ms_per_flop_token,
        "predicted_attention_scores_ms": parts["attention_scores"] * ms_per_flop_token,
        "top_ops": sorted(((n, ms, classify(n)) for n, ms in top.items()), key=lambda t: -t[1])[:12],
    }


def gap_ms(prof: dict[str, Any], measured_ms: float) -> dict[str, float]:
    """``measured_ms - predicted`` split into parts that add up to it exactly: GEMM ops beyond the GEMM
    FLOPs' predicted time, attention ops beyond the score FLOPs', the other categories (no FLOPs
    predicted), unattributed time, and the profiler's effect (measured unprofiled - profiled wall)."""
    cats = prof["categories_ms"]
    return {
        "total": measured_ms - prof["predicted_ms"],
        "gemm_rate": cats["gemm"] - prof["predicted_gemm_ms"],
        "attention": cats["attention"] - prof["predicted_attention_scores_ms"],
        "non_gemm_ops": sum(cats[c] for c in CATEGORIES if c not in ("gemm", "attention")),
        "unattributed": prof["unattributed_ms"],
        "profiler": measured_ms - prof["profiled_wall_ms"],
    }


def prefill_bounds(ms: ModelBenchSettings, *, batch: int, seq: int) -> dict[str, Any]:
    """The model section's variants (dense, HF and our MoE, AdaMoE at ``ms.target_loads``) at one
    (batch, seq) point: the model bench's interleaved timing and prediction (:func:`prefill_point`), then
    one profiled forward of each at the GEMM probe's rate of those rounds."""
    variants, dial = build_variants(ms)
    point = prefill_point(ms, variants, batch, seq, variants["dense"].model.config)
    rate, vocab = point["gemm_GFLOPs"], min(v.model.config.vocab_size for v in variants.values())
    ids = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(ms.seed + seq))
    out = {}
    for name, v in variants.items():
        row = point["variants"][name]
        prof = profile_prefill(v.ready(), ids, gemm_GFLOPs=rate, load=row["load"])
        measured = row["seconds"] * 1e3
        out[name] = {**prof, "measured_ms": measured, "gap_ms": gap_ms(prof, measured)}
    return {"batch": batch, "seq_len": seq, "gemm_GFLOPs": rate, "dial": dial, "variants": out}


def profile_table(result: dict[str, Any]) -> list[str]:
    """Markdown tables of whichever sections ``result`` holds (keys ``training``, ``decode``, ``prefill``)."""
    formats = {"training": _training_lines, "decode": _decode_lines, "prefill": _prefill_lines}
    return [line for key, fmt in formats.items() if key in result for line in fmt(result[key])]


def _training_lines(tr: dict[str, Any]) -> list[str]:
    lim, pr, r = tr["limit"], tr["predicted"], tr["ratios"]
    lines = [
        f"### Training shape: each GEMM as one mm over N rows ('big') vs per-group mms (rows {tr['group_rows']})",
        "| GEMM | GFLOP | big ms | big GFLOP/s | grouped ms | grouped GFLOP/s | grouped / big |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in tr["shapes"].items():
        b, g = v["big_seconds"], v["grouped_seconds"]
        lines.append(
            f"| {name} | {v['flops'] / 1e9:.2f} | {b * 1e3:.1f} | {v['big_GFLOPs']:.1f} | {g * 1e3:.1f} | "
            f"{v['grouped_GFLOPs']:.1f} | {g / b:.3f} |"
        )
    return [
        *lines,
        "",
        f"limit {lim['limit_seconds'] * 1e3:.1f} ms (peak {lim['peak_gemm_GFLOPs']:.1f} GFLOP/s); each shape at its "
        f"own big-mm rate {pr['big_each_seconds'] * 1e3:.1f} ms ({r['big_each_vs_limit']:.3f}×); at the per-group "
        f"rates {pr['grouped_seconds'] * 1e3:.1f} ms ({r['grouped_predicted_vs_limit']:.3f}×); measured adamoe "
        f"grouped {tr['layer_seconds'] * 1e3:.1f} ms ({r['layer_vs_limit']:.3f}×; "
        f"{r['layer_vs_grouped_predicted']:.3f}× the per-group prediction): the per-group GEMM rates account "
        f"for {tr['gap_explained']:.0%} of the layer's gap to the limit.",
        "",
    ]


def _decode_lines(de: dict[str, Any]) -> list[str]:
    lines = [
        f"### Decode T=1: {len(de['chosen_experts'])} experts, {de['weight_MB']:.1f} MB of weights (BLAS {de['blas']})",
        "| threads | candidate | ms | GB/s |",
        "|---:|---|---:|---:|",
    ]
    for t, row in de["threads"].items():
        lines += [f"| {t} | {name} | {v['ms']:.2f} | {v['GBps']:.1f} |" for name, v in row.items()]
    return [*lines, ""]


def _prefill_lines(pf: dict[str, Any]) -> list[str]:
    lines = [
        f"### Prefill {pf['batch']}×{pf['seq_len']}: self CPU ms per category (GEMM probe {pf['gemm_GFLOPs']:.0f} GFLOP/s)",
        f"| variant | measured | predicted | {' | '.join(CATEGORIES)} | unattributed |",
        "|---|---:|---:|" + "---:|" * (len(CATEGORIES) + 1),
    ]
    for name, v in pf["variants"].items():
        cats = " | ".join(f"{v['categories_ms'][c]:.1f}" for c in CATEGORIES)
        lines.append(
            f"| {name} | {v['measured_ms']:.1f} | {v['predicted_ms']:.1f} | {cats} | {v['unattributed_ms']:.1f} |"
        )
    parts = list(next(iter(pf["variants"].values()))["gap_ms"])
    lines += ["", f"Gap to the prediction, ms: {' + '.join(parts[1:])} = {parts[0]}", ""]
    lines += [f"| variant | {' | '.join(parts)} |", "|---|" + "---:|" * len(parts)]
    for name, v in pf["variants"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v['gap_ms'][p]:.1f}" for p in parts) + " |")
    for name, v in pf["variants"].items():
        top = ", ".join(f"{n.removeprefix('aten::')} {ms:.1f} ({c})" for n, ms, c in v["top_ops"][:8])
        lines.append(f"- {name} top ops (ms): {top}")
    return [*lines, ""]
