"""Compiled prefill variants of the model section (issue 20): ``torch.compile`` of whole models.

Why: eager prefill pays Python dispatch for every norm, RoPE and element-wise op of every layer; the
compiler fuses them. Each ``<name>_compiled`` variant is ``torch.compile(model, dynamic=False)`` with the
default (inductor) backend, run in eval mode under ``torch.inference_mode`` like its eager twin and timed
in the same rotated rounds, so ``× eager`` and ``× hf grouped_mm`` (eager or compiled) are paired
per-round ratios (:func:`adamoe.bench.paired.paired_ratio`).

- ``fullgraph=True`` where :func:`torch._dynamo.explain` finds no graph break, else ``False``;
  :func:`graph_breaks` records how many and why (the JSON says what was fused). Our MoE dispatch reads
  the group counts back to the host (``bincount``, ``tolist``); under the compiler (inference) it runs
  the routed experts as one opaque custom op (:func:`adamoe.dispatch.moe_routed_swiglu`) with that read
  inside, and the decode kernels stay out of traced code, so our MoE compiles as one graph too (it broke
  the graph at every MoE layer before).
- Inside that op our experts run eagerly, on the ``auto`` backend's eager choice per shape bucket, as
  their eager twin does (:func:`experts_backend`; inductor could not lower fp32 ``torch._grouped_mm``
  anyway, bf16 only). transformers' ``grouped_mm`` experts leave ``torch._grouped_mm`` under the
  compiler unless bf16 (its ``_can_use_grouped_mm``: a ``grouped_mm_fallback`` custom op, one graph).
- The AdaMoE loads share one compiled module (the dial is a float on the routers, which the compiler
  guards on or takes as an input; the tests check each load's logits against eager). The load of a compiled variant is read by its eager model on the
  same tokens (the recorder's callbacks would make the compiler recompile).
- The first call at a new shape compiles: :func:`warm_compiled` makes it (untimed) before the rounds, and
  the rounds run under :func:`no_recompile`, so a compile can never land in a timed round. The warm-up
  has no recompile limit: where a graph breaks in the dispatch (experts the op does not serve), dynamo
  specialises it on each layer's routed group counts (and ``_mm_out`` on each group's size), so every MoE
  layer x grid point x dial load adds entries to the same code objects (a 2-layer tiny model with 3 compiled AdaMoE variants x 4 grid points passed the old
  budget of 20 per code object); no budget counted in advance is safe, and a limit hit would either
  abort the bench or silently run that frame eagerly in the timed rounds.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from adamoe.bench.settings import ModelBenchSettings

__all__ = [
    "SUFFIX",
    "compile_lines",
    "compiled_variants",
    "expert_modules",
    "experts_backend",
    "graph_breaks",
    "no_recompile",
    "warm_compiled",
]

SUFFIX = "_compiled"
"""A compiled variant's name: its eager variant's name + this."""


def expert_modules(model: nn.Module) -> list[nn.Module]:
    """Every fused 3-D experts module (transformers' or ours): ``gate_up_proj`` of shape (E, 2I, H)."""
    return [m for m in model.modules() if hasattr(m, "gate_up_proj") and m.gate_up_proj.dim() == 3]


def experts_backend(model: nn.Module) -> str | None:
    """What our experts run under ``torch.compile`` (None: dense, or transformers' own experts): the op
    :data:`adamoe.dispatch.ROUTED_OP`, inside which the ``auto`` backend picks per shape bucket in eager
    (:func:`adamoe.experts.backend.chosen_backends`), as in the eager twin. The bench's models run plain
    fused SwiGLU experts under ``inference_mode``, which the op serves (:func:`adamoe.dispatch.compiled_routed`)."""
    from adamoe.dispatch import ROUTED_OP
    from adamoe.experts.backend import AUTO
    from adamoe.routing.source import routing_sources

    if not expert_modules(model) or next(routing_sources(model), None) is None:
        return None
    return f"{AUTO} (eager, in {ROUTED_OP})"


def graph_breaks(model: nn.Module, ids: torch.Tensor) -> dict[str, Any]:
    """Graphs of one ``model(input_ids=ids)`` under dynamo, ``graph_breaks`` as explain counts them
    (graphs - 1), the ops of each graph, and each break dynamo reported by its reason (first line) and
    where in the source it happened, counted. Resets dynamo's caches (explain does)."""
    with torch.inference_mode():
        ex = torch._dynamo.explain(model)(input_ids=ids, use_cache=False)
    reasons: Counter[str] = Counter()
    for brk in ex.break_reasons:
        frame = brk.user_stack[-1] if brk.user_stack else None
        where = f" ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame is not None else ""
        reasons[str(brk.reason).strip().splitlines()[0] + where] += 1
    return {
        "graphs": int(ex.graph_count),
        "graph_breaks": int(ex.graph_break_count),
        "ops_per_graph": [len(ops) for ops in ex.ops_per_graph],
        "break_reasons": dict(reasons),
        "explain_shape": list(ids.shape),
    }


def compiled_variants(
    ms: ModelBenchSettings, variants: dict[str, Any], ids: torch.Tensor
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``<name>_compiled`` for each of ``ms.compiled`` present in ``variants`` (none if ``ms.compile`` is
    off), and the record of how each was compiled (graph breaks counted on ``ids``, fullgraph, backend).

    ``variants``: name -> :class:`adamoe.bench.model.Variant`; a compiled one shares its eager twin's
    model and dial bias and carries the compiled module in ``compiled``.
    """
    names = [n for n in ms.compiled if n in variants] if ms.compile else []
    record: dict[str, Any] = {}
    for name in names:  # explain resets dynamo: every explain before any compile
        variants[name].ready()
        record[name + SUFFIX] = {
            **graph_breaks(variants[name].model, ids),
            "experts_backend": experts_backend(variants[name].model),
        }
    modules: dict[int, nn.Module] = {}
    fullgraph: dict[int, bool] = {}
    out = {}
    for name in names:
        model = variants[name].model
        if id(model) not in modules:  # the AdaMoE loads share one model: one compiled module
            sharing = [n for n in names if variants[n].model is model]
            fullgraph[id(model)] = all(record[n + SUFFIX]["graph_breaks"] == 0 for n in sharing)
            modules[id(model)] = torch.compile(model.eval(), fullgraph=fullgraph[id(model)], dynamic=False)
        record[name + SUFFIX]["fullgraph"] = fullgraph[id(model)]
        out[name + SUFFIX] = replace(variants[name], compiled=modules[id(model)])
    if not names:
        return out, {}
    settings = {"backend": "inductor", "dynamic": False, "grad": "inference_mode", "eval": True}
    return out, {"settings": settings, "variants": record}


def no_recompile(variants: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    """A compile inside the block raises (``fail_on_recompile``) when any variant is compiled."""
    if any(v.compiled is not None for v in variants.values()):
        return torch.compiler.set_stance("fail_on_recompile")
    return contextlib.nullcontext()


def warm_compiled(
    variants: dict[str, Any], forward: Callable[[nn.Module], Any]
) -> dict[str, dict[str, float]]:
    """Compile every compiled variant at this shape (its first call, untimed; its seconds are compile +
    one forward) and compare its logits with its eager model's once: ``max_abs_logit_diff``.

    No recompile limit here (module doc): every entry the timed rounds need is made now, whatever the
    number of layers, and none can be made in them (:func:`no_recompile`)."""
    out = {}
    unlimited = {"recompile_limit": sys.maxsize, "accumulated_recompile_limit": sys.maxsize}
    with torch.inference_mode(), torch._dynamo.config.patch(**unlimited):
        for name, v in variants.items():
            if v.compiled is None:
                continue
            model = v.ready()
            t0 = time.perf_counter()
            got = forward(model).logits
            seconds = time.perf_counter() - t0
            want = forward(v.model).logits
            out[name] = {"first_call_seconds": seconds, "max_abs_logit_diff": float((got - want).abs().max())}
    return out


def compile_lines(res: dict[str, Any]) -> list[str]:
    """How each compiled variant compiled: graphs, breaks and their reasons, the experts' backend, the
    first call (compile + one forward) per grid point and the largest logit difference to eager."""
    record = res.get("compile") or {}
    if not record:
        return []
    lines = [
        "",
        "Compiled prefill (torch.compile, inductor, dynamic=False; fullgraph where dynamo found no break; "
        "first call = compile + one forward, before the timed rounds)",
        "| variant | graphs | graph breaks | fullgraph | experts backend | first call s | max abs logit diff |",
        "|---|---:|---:|---|---|---:|---:|",
    ]
    for name, c in record["variants"].items():
        firsts = [p["compile"][name] for p in res["prefill"] if name in p.get("compile", {})]
        first = ", ".join(f"{f['first_call_seconds']:.1f}" for f in firsts)
        diff = max((f["max_abs_logit_diff"] for f in firsts), default=float("nan"))
        lines.append(
            f"| {name} | {c['graphs']} | {c['graph_breaks']} | {c['fullgraph']} | {c['experts_backend'] or '–'} | "
            f"{first} | {diff:.1e} |"
        )
    for name, c in record["variants"].items():
        if c["break_reasons"]:
            why = "; ".join(f"{n}× {reason}" for reason, n in c["break_reasons"].items())
            lines.append(f"- {name} breaks (distinct, at {'×'.join(map(str, c['explain_shape']))}): {why}")
    return lines
