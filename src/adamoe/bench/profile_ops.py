"""What a prefill forward spends its time on: ``torch.profiler`` self CPU time per op category
(:data:`OP_CATEGORIES`) beside the whole-model FLOPs prediction of :mod:`adamoe.bench.model`, the gap
split into GEMM rate, attention and non-GEMM work (``benchmarks/profile_bounds.py --sections prefill``).
One profiled forward per variant (not a median): it says where the time goes, the model section's paired
ratios say how much.

The ``<name>_compiled`` variants are the model section's own (:func:`adamoe.bench.model_compile.compiled_variants`),
compiled and warmed at the profiled shape before anything is profiled (:func:`adamoe.bench.model.prefill_point`)
and profiled under ``fail_on_recompile``. Their events add three categories: ``routed_op`` (everything inside
our :data:`~adamoe.dispatch.ROUTED_OP`, split again by op in ``routed_op_ms``), ``compiled`` (the self time of
inductor's ``## Call CompiledFxGraph`` event: its generated C++ kernels, i.e. the fused element-wise, norm,
RoPE and softmax work, plus the graph's Python wrapper) and ``dynamo`` (guard checks and the compiled region's
wrappers).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from adamoe.bench import model as bm
from adamoe.bench.model import ANCHOR, Variant, build_variants, prefill_ids, prefill_point
from adamoe.bench.model_compile import SUFFIX, compiled_variants, no_recompile
from adamoe.bench.paired import fmt_ratio
from adamoe.bench.settings import ModelBenchSettings
from adamoe.dispatch import ROUTED_OP

__all__ = [
    "CATEGORIES",
    "EVENT_PREFIXES",
    "NORM_SCOPE",
    "OP_CATEGORIES",
    "OpTime",
    "category_ms",
    "classify",
    "gap_ms",
    "label",
    "op_times",
    "prefill_bounds",
    "prefill_lines",
    "profile_prefill",
    "profiled_ops",
    "routed_op_ms",
]

CATEGORIES = (
    "gemm", "attention", "norm", "elementwise", "dispatch", "copy", "routed_op", "compiled", "dynamo", "other"
)  # fmt: skip

_OPS: dict[str, str] = {
    "gemm": "mm addmm bmm baddbmm matmul linear _grouped_mm mv addmv dot transformers::grouped_mm_fallback",
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
    "routed_op": ROUTED_OP,
}
OP_CATEGORIES: dict[str, str] = {op: cat for cat, ops in _OPS.items() for op in ops.split()}
"""op name (aten's without the ``aten::`` prefix, in-place ``_`` suffix dropped) -> category; unlisted ops are
``other`` (views, allocations, the embedding look-up, ``arange``...). Two custom ops, both seen only under
``torch.compile``: ours, :data:`~adamoe.dispatch.ROUTED_OP` (its own self time: the Python in it), and
transformers' ``grouped_mm_fallback`` (``gemm``: its self time is its Python loop over the expert groups'
``mm``, as ``aten::_grouped_mm``'s own self time is its loop in eager). Our C++ decode kernel is a pybind
call, invisible to the profiler (and not used at prefill)."""

EVENT_PREFIXES: dict[str, str] = {
    "## Call CompiledFxGraph": "compiled",
    "Torch-Compiled Region": "dynamo",
    "TorchDynamo Cache Lookup": "dynamo",
    "Pregraph bytecode": "dynamo",
    "AOTDispatcher Runtime Wrapper": "dynamo",
}
"""Profiler events of a compiled call that are not ops, by name prefix -> category. The compiled graph's
event (``## Call CompiledFxGraph <key> ##``) holds inductor's generated kernels as its self time (its extern
kernels, e.g. ``aten::mm``, are its child events); the others are dynamo's and AOTDispatcher's wrappers."""

NORM_SCOPE = "adamoe_profile::norm"
"""Profiler scope wrapped around every ``*Norm`` module: an RMSNorm is ``pow``/``mean``/``rsqrt``/``mul``
in transformers, so its ops count as ``norm`` instead of ``elementwise``/``copy``/``other`` inside it. The
scope's own self time (Python in the module) stays unattributed, as every other module's does."""


def classify(name: str, *, in_norm: bool = False, in_routed_op: bool = False) -> str:
    """The category of profiler event ``name`` (e.g. ``aten::addmm``, ``aten::mul_``), by
    :data:`OP_CATEGORIES`, else :data:`EVENT_PREFIXES`; every event inside :data:`~adamoe.dispatch.ROUTED_OP`
    is ``routed_op``, and element-wise, copy and other ops inside a norm module's scope are ``norm``."""
    if in_routed_op:
        return "routed_op"
    op = name.removeprefix("aten::")
    category = OP_CATEGORIES.get(op) or OP_CATEGORIES.get(op.removesuffix("_"))
    category = category or next((c for p, c in EVENT_PREFIXES.items() if name.startswith(p)), "other")
    return "norm" if in_norm and category in ("elementwise", "copy", "other") else category


def label(name: str) -> str:
    """``name`` without a compile's key or id (``## Call CompiledFxGraph <key> ##`` -> ``## Call CompiledFxGraph
    ##``, ``Torch-Compiled Region: 0/1`` -> ``Torch-Compiled Region``), so the same event of two graphs adds
    up in the top ops; any other name as it is."""
    if name.startswith("## Call CompiledFxGraph"):
        return "## Call CompiledFxGraph ##"
    return "Torch-Compiled Region" if name.startswith("Torch-Compiled Region") else name


@dataclass(frozen=True, kw_only=True)
class OpTime:
    """One profiler event: its name, self CPU milliseconds, whether it ran inside a norm scope and whether
    inside :data:`~adamoe.dispatch.ROUTED_OP` (or is that op)."""

    name: str
    self_ms: float
    in_norm: bool = False
    in_routed_op: bool = False


def category_ms(ops: Iterable[OpTime]) -> dict[str, float]:
    """Self milliseconds per category (every key of :data:`CATEGORIES`) and their ``total``.

    Self time (an event's time minus its children's) counts each instant once, so ``aten::linear`` ->
    ``aten::addmm`` is not counted twice and the categories sum to the total.
    """
    out = dict.fromkeys(CATEGORIES, 0.0)
    for op in ops:
        out[classify(op.name, in_norm=op.in_norm, in_routed_op=op.in_routed_op)] += op.self_ms
    out["total"] = sum(out[c] for c in CATEGORIES)
    return out


def routed_op_ms(ops: Iterable[OpTime]) -> dict[str, float]:
    """The ``routed_op`` category split by what runs inside the op: :func:`category_ms` of the events in
    :data:`~adamoe.dispatch.ROUTED_OP` by their own names (its ``routed_op`` key: the op's own self time, the
    Python in it; ``gemm``: the experts' GEMMs; ``dispatch``: the plan, gather and weighted scatter)."""
    return category_ms(replace(op, in_routed_op=False) for op in ops if op.in_routed_op)


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


def _inside(event: Any, name: str) -> bool:
    """Whether ``event`` is the event ``name`` or runs inside one (a parent of it)."""
    while event is not None and event.name != name:
        event = event.cpu_parent
    return event is not None


def profiled_ops(model: nn.Module, input_ids: torch.Tensor) -> tuple[list[OpTime], float]:
    """The ops of one (B, S) ``input_ids`` forward (after one untimed warm-up) and its wall ms under the
    profiler (CPU activity, shapes not recorded; ops run on the calling thread, intra-op workers inside).
    A ``torch.compile``d ``model`` gets no norm scopes: hooks would make it recompile, and its norms are
    fused into the compiled graph's kernels anyway."""
    from torch._dynamo.eval_frame import OptimizedModule
    from torch.profiler import ProfilerActivity, profile

    scopes = contextlib.nullcontext() if isinstance(model, OptimizedModule) else _norm_scopes(model)
    with torch.inference_mode():
        model(input_ids=input_ids, use_cache=False)
        with scopes, profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
            t0 = time.perf_counter()
            model(input_ids=input_ids, use_cache=False)
            wall = (time.perf_counter() - t0) * 1e3
    return op_times(prof.events()), wall


def op_times(events: Iterable[Any]) -> list[OpTime]:
    """One :class:`OpTime` per profiler event (``name``, ``self_cpu_time_total`` in µs, ``cpu_parent``),
    :data:`NORM_SCOPE` events left out (their self time is Python, as any module's), each marked by the
    scopes it ran in: a norm module's, :data:`~adamoe.dispatch.ROUTED_OP` (the op's own event included)."""
    return [
        OpTime(
            name=e.name,
            self_ms=e.self_cpu_time_total / 1e3,
            in_norm=_inside(e, NORM_SCOPE),
            in_routed_op=_inside(e, ROUTED_OP),
        )
        for e in events
        if e.name != NORM_SCOPE
    ]


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
            load = bm.measured_load(Variant(model=model), lambda m: m(input_ids=input_ids, use_cache=False))
    ops, wall = profiled_ops(model, input_ids)
    cats = category_ms(ops)
    inside = routed_op_ms(ops)
    parts = forward_flops(
        bm.decoder_shape(model), load=load, num_null=bm.num_null_of(model), context_len=(seq + 1) / 2
    )
    ms_per_flop_token = batch * seq / (gemm_GFLOPs * 1e6)  # per-token FLOPs -> ms of the whole batch
    top: dict[tuple[str, str], float] = {}  # by (label, category): an mm in the routed op is not another's
    for op in ops:
        key = (label(op.name), classify(op.name, in_norm=op.in_norm, in_routed_op=op.in_routed_op))
        top[key] = top.get(key, 0.0) + op.self_ms
    return {
        "load": load,
        "categories_ms": {c: cats[c] for c in CATEGORIES},
        "routed_op_ms": inside,
        "ops_total_ms": cats["total"],
        "profiled_wall_ms": wall,
        "unattributed_ms": wall - cats["total"],
        "predicted_ms": parts["total"] * ms_per_flop_token,
        "predicted_gemm_ms": (parts["total"] - parts["attention_scores"]) * ms_per_flop_token,
        "predicted_attention_scores_ms": parts["attention_scores"] * ms_per_flop_token,
        "top_ops": sorted(((n, ms, c) for (n, c), ms in top.items()), key=lambda t: -t[1])[:12],
    }


def gap_ms(prof: dict[str, Any], measured_ms: float) -> dict[str, float]:
    """``measured_ms - predicted`` split into parts that add up to it exactly: GEMM ops (also those inside
    the routed op) beyond the GEMM FLOPs' predicted time, attention ops beyond the score FLOPs', the other
    categories (no FLOPs predicted), unattributed time, and the profiler's effect (measured unprofiled -
    profiled wall)."""
    cats, routed_gemm = prof["categories_ms"], prof["routed_op_ms"]["gemm"]
    return {
        "total": measured_ms - prof["predicted_ms"],
        "gemm_rate": cats["gemm"] + routed_gemm - prof["predicted_gemm_ms"],
        "attention": cats["attention"] - prof["predicted_attention_scores_ms"],
        "non_gemm_ops": sum(cats[c] for c in CATEGORIES if c not in ("gemm", "attention")) - routed_gemm,
        "unattributed": prof["unattributed_ms"],
        "profiler": measured_ms - prof["profiled_wall_ms"],
    }


def prefill_bounds(
    ms: ModelBenchSettings, *, batch: int, seq: int, threads: int | None = None
) -> dict[str, Any]:
    """The model section's variants (dense, HF and our MoE, AdaMoE at ``ms.target_loads``, and with
    ``ms.compile`` the ``<name>_compiled`` of each of ``ms.compiled``) at one (batch, seq) point: the model
    bench's rotated rounds and prediction (:func:`prefill_point`, on ``threads`` pinned threads; it compiles
    and warms every compiled variant at this shape first), then one profiled forward of each at the GEMM
    probe's median rate, a compiled one under ``fail_on_recompile`` (no compile can be profiled)."""
    variants, dial = build_variants(ms)
    ids = prefill_ids(ms, variants, batch, seq)
    compiled, record = compiled_variants(ms, variants, ids)
    timed = {**variants, **compiled}
    dense_cfg = variants["dense"].model.config
    point = prefill_point(ms, timed, batch, seq, dense_cfg, threads=threads or torch.get_num_threads())
    rate = point["gemm_GFLOPs"]
    out = {}
    for name, v in timed.items():
        row = point["variants"][name]
        with no_recompile({name: v}):
            prof = profile_prefill(v.ready(), ids, gemm_GFLOPs=rate, load=row["load"])
        measured = row["seconds"] * 1e3
        anchors = {k: row[k] for k in ("vs_hf_grouped_mm", "vs_hf_grouped_mm_compiled")}
        out[name] = {**prof, "measured_ms": measured, "gap_ms": gap_ms(prof, measured), **anchors}
    testbed = None if ms.quick else ms.testbed  # quick: tiny random models, no testbed
    res = {
        "batch": batch,
        "seq_len": seq,
        "testbed": testbed,
        "gemm_GFLOPs": rate,
        "dial": dial,
        "variants": out,
    }
    return {**res, "compile": record, "first_calls": point.get("compile", {})} if compiled else res


def _vs_hf(name: str, v: dict[str, Any]) -> str:
    """A variant's paired ratio to transformers' ``grouped_mm`` MoE of its own kind (eager to eager,
    compiled to compiled; ``anchor`` for that MoE itself, ``–`` when it was not timed)."""
    ratio = v["vs_hf_grouped_mm_compiled" if name.endswith(SUFFIX) else "vs_hf_grouped_mm"]
    return fmt_ratio(ratio) if ratio else ("anchor" if name.removesuffix(SUFFIX) == ANCHOR else "–")


def prefill_lines(pf: dict[str, Any]) -> list[str]:
    """Markdown tables of :func:`prefill_bounds`: ms per category, the gap split, the top ops."""
    lines = [
        f"### Prefill {pf['batch']}×{pf['seq_len']}, MoE {pf.get('testbed') or 'tiny random'}: self CPU ms per "
        f"category (GEMM probe {pf['gemm_GFLOPs']:.0f} GFLOP/s)",
        "routed_op: all of adamoe::moe_routed_swiglu, its children included; compiled: the self time of "
        "inductor's compiled graph (its generated kernels and Python wrapper); dynamo: guards and wrappers. "
        "× hf: measured, paired per round, to transformers' grouped_mm MoE of the same mode (eager/compiled).",
        "",
        f"| variant | measured | × hf | predicted | {' | '.join(CATEGORIES)} | unattributed |",
        "|---|---:|---:|---:|" + "---:|" * (len(CATEGORIES) + 1),
    ]
    for name, v in pf["variants"].items():
        cats = " | ".join(f"{v['categories_ms'][c]:.1f}" for c in CATEGORIES)
        lines.append(
            f"| {name} | {v['measured_ms']:.1f} | {_vs_hf(name, v)} | {v['predicted_ms']:.1f} | {cats} | "
            f"{v['unattributed_ms']:.1f} |"
        )
    parts = list(next(iter(pf["variants"].values()))["gap_ms"])
    lines += ["", f"Gap to the prediction, ms: {' + '.join(parts[1:])} = {parts[0]}", ""]
    lines += [f"| variant | {' | '.join(parts)} |", "|---|" + "---:|" * len(parts)]
    for name, v in pf["variants"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v['gap_ms'][p]:.1f}" for p in parts) + " |")
    lines.append("")
    for name, v in pf["variants"].items():
        top = ", ".join(f"{n.removeprefix('aten::')} {ms:.1f} ({c})" for n, ms, c in v["top_ops"][:8])
        lines.append(f"- {name} top ops (ms): {top}")
        if v["routed_op_ms"]["total"] > 0:
            inside = ", ".join(f"{c} {v['routed_op_ms'][c]:.1f}" for c in CATEGORIES if v["routed_op_ms"][c])
            lines.append(f"  - inside {ROUTED_OP} (ms; routed_op = the op's own Python): {inside}")
    return [*lines, ""]
