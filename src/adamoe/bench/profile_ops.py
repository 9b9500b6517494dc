"""What a prefill forward spends its time on: ``torch.profiler`` self CPU time per op category
(:data:`OP_CATEGORIES`) beside the whole-model FLOPs prediction of :mod:`adamoe.bench.model`, the gap
split into GEMM rate, attention and non-GEMM work (``benchmarks/profile_bounds.py --sections prefill``).
One profiled forward per variant (not a median): it says where the time goes, the model section's paired
ratios say how much.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adamoe.bench import model as bm
from adamoe.bench.model import Variant, build_variants, prefill_point
from adamoe.bench.settings import ModelBenchSettings

__all__ = [
    "CATEGORIES",
    "NORM_SCOPE",
    "OP_CATEGORIES",
    "OpTime",
    "category_ms",
    "classify",
    "gap_ms",
    "prefill_bounds",
    "prefill_lines",
    "profile_prefill",
    "profiled_ops",
]

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
            load = bm.measured_load(Variant(model=model), lambda m: m(input_ids=input_ids, use_cache=False))
    ops, wall = profiled_ops(model, input_ids)
    cats = category_ms(ops)
    parts = forward_flops(
        bm.decoder_shape(model), load=load, num_null=bm.num_null_of(model), context_len=(seq + 1) / 2
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


def prefill_bounds(
    ms: ModelBenchSettings, *, batch: int, seq: int, threads: int | None = None
) -> dict[str, Any]:
    """The model section's variants (dense, HF and our MoE, AdaMoE at ``ms.target_loads``) at one
    (batch, seq) point: the model bench's rotated rounds and prediction (:func:`prefill_point`, on
    ``threads`` pinned threads), then one profiled forward of each at the GEMM probe's median rate."""
    variants, dial = build_variants(ms)
    dense_cfg = variants["dense"].model.config
    point = prefill_point(ms, variants, batch, seq, dense_cfg, threads=threads or torch.get_num_threads())
    rate, vocab = point["gemm_GFLOPs"], min(v.model.config.vocab_size for v in variants.values())
    ids = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(ms.seed + seq))
    out = {}
    for name, v in variants.items():
        row = point["variants"][name]
        prof = profile_prefill(v.ready(), ids, gemm_GFLOPs=rate, load=row["load"])
        measured = row["seconds"] * 1e3
        out[name] = {**prof, "measured_ms": measured, "gap_ms": gap_ms(prof, measured)}
    return {"batch": batch, "seq_len": seq, "gemm_GFLOPs": rate, "dial": dial, "variants": out}


def prefill_lines(pf: dict[str, Any]) -> list[str]:
    """Markdown tables of :func:`prefill_bounds`: ms per category, the gap split, the top ops."""
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
