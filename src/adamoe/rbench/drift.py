"""Routing drift: how the routing of a dimension's stages shifts away from a *matched* reference stage.

For MoE models, routing statistics of every stage of a dimension — load, router entropy (nats, mean per
token and layer) — and, for each compared stage, its shift from its reference: per-layer Jensen-Shannon
divergence (bits, `metrics.per_layer_js`) of expert-choice histograms (true and null experts: routing to
a null expert is a routing choice). Each dimension pairs a stage with a reference from the same source,
so the drift measures the property and not a change of source: the same items before an attack or shift
(adversarial, OOD surface shifts), the ID items of the same pair (OOD neighbours), the correctly
answered questions of the same set (hallucination: wrong vs correct), our benign look-alikes of our own
harmful one-liners (safety).

Each shift is tested by permutation: the reference's and the stage's items are pooled and split at random
into groups of the same sizes `N_PERM` times; p = (1 + #{split JS >= observed}) / (1 + N_PERM). The
p-values of a dimension's comparisons are Holm-adjusted together (`p_holm`); `within_noise` means
p_holm >= 0.05 (no drift beyond what a random split of the same items shows). Dense models have no
routing: `routing_report` returns None and reports show "–". Per-item routing sums, their packing and the
summary live in `adamoe.stats` (`ItemRoutingRecorder`, `summarise_packs`); this module only compares.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from adamoe.eval.significance import holm
from adamoe.rbench.metrics import js_divergence, per_layer_js
from adamoe.rbench.uncertainty import stream
from adamoe.stats import SCALARS

if TYPE_CHECKING:
    from adamoe.rbench.evaluator import ModelEvaluator

__all__ = ["expert_histograms", "permutation_p", "routing_report"]

N_PERM = 200
ALPHA = 0.05


def expert_histograms(summary: Mapping[str, Any]) -> dict[str, list[float]]:
    """Per-layer expert-choice counts (true and null experts) of a routing summary, for JS divergences."""
    return {name: list(s["expert_counts"]) for name, s in summary["layers"].items()}


def _mean_js(a: np.ndarray, b: np.ndarray, bounds: np.ndarray) -> float:
    """Mean over layers of the JS between the summed histograms of item rows `a` and `b`."""
    ha, hb = a.sum(axis=0), b.sum(axis=0)
    vals = [
        js_divergence(ha[lo:hi], hb[lo:hi])
        for lo, hi in itertools.pairwise(bounds)
        if ha[lo:hi].sum() > 0 and hb[lo:hi].sum() > 0
    ]
    return float(np.mean(vals)) if vals else 0.0


def permutation_p(
    ref: Sequence[np.ndarray], other: Sequence[np.ndarray], *, rng: np.random.Generator, n_perm: int = N_PERM
) -> float | None:
    """Permutation p-value of the mean per-layer JS between two item sets (module docstring).

    ref, other: one ``(n_items, E+m)`` array of per-item expert counts per layer, same layers. None when
    either side has no item or no layer.
    """
    if not ref or not other or ref[0].shape[0] < 1 or other[0].shape[0] < 1:
        return None
    bounds = np.cumsum([0, *[c.shape[1] for c in ref]])
    a, b = np.concatenate(ref, axis=1), np.concatenate(other, axis=1)
    observed = _mean_js(a, b, bounds)
    pool = np.concatenate([a, b])
    hits = 0
    for _ in range(n_perm):
        perm = rng.permutation(pool.shape[0])
        hits += _mean_js(pool[perm[: len(a)]], pool[perm[len(a) :]], bounds) >= observed - 1e-12
    return (1 + hits) / (1 + n_perm)


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
            _item_counts(ev, *groups[ref]), _item_counts(ev, *groups[label]), rng=stream(seed, "perm", label)
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
