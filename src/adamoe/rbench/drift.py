"""Routing drift: how the routing of a dimension's stages shifts away from its clean reference stage.

For MoE models, routing statistics of every stage of a dimension and their shift from the
dimension's clean stage — load, router entropy (nats, mean per token and layer), and the per-layer
Jensen-Shannon divergence (bits, `metrics.per_layer_js`) of expert-choice histograms. Histograms
count true and null experts (routing to a null expert is a routing choice).

Every shift is read against a noise floor: the same mean JS between two random halves of the clean
stage's items (`adamoe.eval.significance.split_half_floor`, 200 splits). A shift whose JS does not
exceed the floor's 95th percentile is flagged `within_noise` — the two sets route no more
differently than two halves of one set do. The halves hold half the items, so the floor is
conservative (plug-in JS grows as samples shrink). Dense models have no
routing: `routing_report` returns None and reports show "–". Per-item routing sums, their packing
and the summary live in `adamoe.stats` (`ItemRoutingRecorder`, `summarise_packs`); this module only
compares summaries.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from adamoe.eval.significance import NoiseFloor, split_half_floor, within_noise
from adamoe.rbench.metrics import js_divergence, per_layer_js
from adamoe.rbench.uncertainty import stream
from adamoe.stats import SCALARS

if TYPE_CHECKING:
    from adamoe.rbench.evaluator import ModelEvaluator

__all__ = ["expert_histograms", "histogram_floor", "routing_report"]

N_SPLITS = 200


def expert_histograms(summary: Mapping[str, Any]) -> dict[str, list[float]]:
    """Per-layer expert-choice counts (true and null experts) of a routing summary, for JS divergences."""
    return {name: list(s["expert_counts"]) for name, s in summary["layers"].items()}


def histogram_floor(counts: Sequence[np.ndarray], *, rng: np.random.Generator) -> NoiseFloor | None:
    """Split-half floor of the mean per-layer JS (bits) of summed expert histograms.

    counts: one ``(n_items, E+m)`` array of per-item expert-choice counts per layer. None with fewer
    than 2 items or no layer.
    """
    if not counts or counts[0].shape[0] < 2:
        return None
    bounds = np.cumsum([0, *[c.shape[1] for c in counts]])
    samples = np.concatenate(counts, axis=1)  # (n_items, sum of widths): one row per item

    def stat(a: np.ndarray, b: np.ndarray) -> float:
        ha, hb = a.sum(axis=0), b.sum(axis=0)
        vals = []
        for lo, hi in itertools.pairwise(bounds):
            if ha[lo:hi].sum() > 0 and hb[lo:hi].sum() > 0:
                vals.append(js_divergence(ha[lo:hi], hb[lo:hi]))
        return float(np.mean(vals)) if vals else 0.0

    return split_half_floor(samples, stat, rng=rng, n_splits=N_SPLITS)


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
    clean: str | None,
    compare: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Routing of each group (label -> (stage, item ids or None = all)) and its shift from `clean`.

    `compare` picks the groups whose shift is computed (default: every group but `clean`); `seed` is
    the run seed the noise floor's random splits derive from. None for dense models.
    """
    if not ev.is_moe:
        return None
    summaries = {label: ev.routing_summary(stage, ids) for label, (stage, ids) in groups.items()}
    stages = {label: _stage_view(s) for label, s in summaries.items() if s is not None}
    base = summaries.get(clean) if clean is not None else None
    shift: dict[str, Any] = {}
    floor = None
    if base is not None:
        stage, ids = groups[clean]  # type: ignore[index]
        floor = histogram_floor(_item_counts(ev, stage, ids), rng=stream(seed, "floor", stage))
        for label in compare if compare is not None else [g for g in groups if g != clean]:
            s = summaries.get(label)
            if s is None:
                continue
            js = per_layer_js(expert_histograms(base), expert_histograms(s))
            vals = list(js.values())
            shift[label] = {
                "load": s["load"],
                "delta_load": s["load"] - base["load"],
                "entropy": s["entropy"],
                "delta_entropy": s["entropy"] - base["entropy"],
                "js_mean": sum(vals) / len(vals) if vals else None,
                "js_max": max(vals) if vals else None,
                "js_per_layer": js,
                "noise_floor_p95": floor.p95 if floor is not None else None,
                "within_noise": within_noise(sum(vals) / len(vals), floor) if floor and vals else None,
            }
    floor_view = None if floor is None else {"mean": floor.mean, "p95": floor.p95, "n": floor.n}
    return {
        "clean": clean if base is not None else None,
        "stages": stages,
        "shift": shift,
        "noise_floor": floor_view,
    }
