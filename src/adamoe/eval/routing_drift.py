"""Routing drift: how the routing of an evaluator's stages shifts away from a *matched* reference stage.

For MoE models, routing statistics of every stage (a set of items scored or generated through one
`ModelEvaluator`) — load, router entropy (nats, mean per token and layer) — and, for each compared stage,
its shift from its reference: per-layer Jensen-Shannon divergence (bits, `adamoe.stats.drift.per_layer_js`)
of expert-choice histograms (true and null experts: routing to a null expert is a routing choice). The
caller pairs a stage with a reference from the same source, so the drift measures the property and not a
change of source (MoE-RBench: the same items before an attack or shift, the correctly answered questions
of the same set, benign look-alikes of the same harmful one-liners).

Each shift is tested by permutation (`adamoe.stats.drift.permutation_p`, `N_PERM` random splits of the
pooled items of the reference and the stage into groups of the same sizes). The p-values of one report's
comparisons are Holm-adjusted together (`p_holm`); `within_noise` means p_holm >= 0.05 (no drift beyond
what a random split of the same items shows). Dense models have no routing: `routing_report` returns None.
Per-item routing sums, their packing and the summary live in `adamoe.stats` (`ItemRoutingRecorder`,
`summarise_packs`); this module only compares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from adamoe.eval.estimates import stream
from adamoe.eval.significance import holm
from adamoe.stats import SCALARS
from adamoe.stats.drift import expert_histograms, per_layer_js, permutation_p

if TYPE_CHECKING:
    from adamoe.eval.evaluator import ModelEvaluator

__all__ = ["routing_report"]

N_PERM = 200
ALPHA = 0.05


def _item_counts(ev: ModelEvaluator, stage: str, ids: Sequence[str] | None) -> list[np.ndarray]:
    """Per-layer ``(n_items, E+m)`` expert counts of a stage's items, in the evaluator's layer order."""
    packs = ev.item_routing(stage, ids)
    out = []
    for layer in ev.layer_order:
        if layer not in ev.shapes or not packs or any(layer not in p for p in packs):
            continue
        width = sum(ev.shapes[layer])
        out.append(np.stack([p[layer][len(SCALARS) : len(SCALARS) + width] for p in packs]))
    return out


def _stage_view(summary: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("load", "entropy", "bypass_rate", "tokens", "flops_pct")
    return {**{k: summary[k] for k in keys if k in summary}, "layers": summary["layers"]}


def routing_report(
    ev: ModelEvaluator,
    groups: Mapping[str, tuple[str, Sequence[str] | None]],
    *,
    pairs: Mapping[str, str],
    seed: int = 0,
) -> dict[str, Any] | None:
    """Routing of each group (label -> (stage, item ids or None = all)) and, for each `pairs` entry
    (compared label -> its reference label), the shift with a Holm-adjusted permutation p-value.
    None for dense models."""
    if not ev.is_moe:
        return None
    summaries = {label: ev.routing_summary(stage, ids) for label, (stage, ids) in groups.items()}
    shift: dict[str, Any] = {}
    for label, ref in pairs.items():
        s, base = summaries.get(label), summaries.get(ref)
        if s is None or base is None:
            continue
        per_layer = per_layer_js(expert_histograms(base), expert_histograms(s))
        js = list(per_layer.values())
        p = permutation_p(
            _item_counts(ev, *groups[ref]),
            _item_counts(ev, *groups[label]),
            rng=stream(seed, "perm", label),
            n_perm=N_PERM,
        )
        shift[label] = {
            "reference": ref,
            "load": s["load"],
            "delta_load": s["load"] - base["load"],
            "entropy": s["entropy"],
            "delta_entropy": s["entropy"] - base["entropy"],
            "js_mean": sum(js) / len(js) if js else None,
            "js_max": max(js) if js else None,
            "js_per_layer": per_layer,
            "p": p,
        }
    tested = {k: v["p"] for k, v in shift.items() if v["p"] is not None}
    for k, p in (holm(tested) if tested else {}).items():
        shift[k].update(p_holm=p, within_noise=p >= ALPHA)
    return {
        "references": sorted({v["reference"] for v in shift.values()}),
        "stages": {label: _stage_view(s) for label, s in summaries.items() if s is not None},
        "shift": shift,
    }
