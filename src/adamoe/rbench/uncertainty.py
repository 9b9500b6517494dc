"""Paired model comparisons of the suite: every model against the first, each against the one before.

The report sets models side by side; this module pairs their per-item scores on each metric
(`adamoe.eval.estimates.paired_by_id`: the items both scored), Holm-adjusted within a dimension. The
per-item scores themselves, their intervals and the random streams live in `adamoe.eval.estimates`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adamoe.eval.estimates import paired_by_id, stream
from adamoe.eval.significance import holm

__all__ = ["compare_models", "model_pairs"]


def model_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """(model, reference) pairs: every model against the first (the dense baseline by convention),
    and each later model against the one before it (AdaMoE vs MoE in the default order)."""
    pairs = [(m, models[0]) for m in models[1:]]
    pairs += [(models[i], models[i - 1]) for i in range(2, len(models))]
    return pairs


def _compare_dim(result: Mapping[str, Any], dim: str, pair: tuple[str, str], seed: int) -> dict[str, Any]:
    """{"identical": bool, "metrics": {metric: paired difference + p_holm}} for one model pair."""
    m, ref = pair
    da, db = result["results"][m]["dims"][dim], result["results"][ref]["dims"][dim]
    sig_a, sig_b = da.get("signature"), db.get("signature")
    if sig_a is not None and sig_a == sig_b:
        return {"identical": True, "metrics": {}}
    out: dict[str, Any] = {}
    for metric, entry in (da.get("items") or {}).items():
        other = (db.get("items") or {}).get(metric)
        if other is None:
            continue
        diff = paired_by_id(entry, other, rng=stream(seed, "delta", dim, metric, m, ref))
        if diff is not None:
            out[metric] = diff
    if out:
        adjusted = holm({k: v["p"] for k, v in out.items()})
        for k, v in out.items():
            v["p_holm"] = adjusted[k]
    return {"identical": False, "metrics": out}


def compare_models(result: Mapping[str, Any], *, seed: int) -> dict[str, dict[str, Any]]:
    """{dim: {"<model> − <reference>": comparison}} for every `model_pairs` pair and dimension.

    Two models whose outputs on a dimension (every choice picked and every generated text) are
    identical get ``{"identical": True}`` and no deltas: a difference of floating-point noise is not a
    finding.
    """
    out: dict[str, dict[str, Any]] = {}
    for dim in result["dims"]:
        out[dim] = {
            f"{m} − {ref}": {"model": m, "reference": ref, **_compare_dim(result, dim, (m, ref), seed)}
            for m, ref in model_pairs(result["models"])
        }
    return out
