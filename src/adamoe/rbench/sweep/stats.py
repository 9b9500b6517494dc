"""The sweep's numbers: per recipe and metric, each arm's mean over seeds with a 95% interval, and MoE − dense.

Why over items *and* seeds: a recipe's effect must be larger than what another training run (data
order, init) changes, not only than item sampling; `adamoe.eval.significance.bootstrap_ci` resamples
both on a ``(n_seeds, n_items)`` array. The MoE − dense column is `paired_difference` with items and
seeds paired (seed i of both arms saw the same data order). Only items scored in every run being
combined enter (e.g. an attack's success rate is defined on items each run got right first); ``n``
says how many. Every draw comes from its own stream (`adamoe.rbench.uncertainty.stream`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adamoe.eval.significance import bootstrap_ci, paired_difference
from adamoe.rbench.uncertainty import N_BOOT, stream

__all__ = ["DENSE_NA", "aligned_scores", "summarise"]

DENSE_NA = "n/a (dense)"
"""The dense cell of a recipe that changes only MoE knobs: the dense model was not re-run for it."""


def aligned_scores(entries: Sequence[Mapping[str, Any]]) -> tuple[list[str], np.ndarray]:
    """Ids scored in every entry (first entry's order) and their scores, ``(n_entries, n_ids)``."""
    lookups = [dict(zip(e["ids"], e["scores"])) for e in entries]
    ids = [i for i in entries[0]["ids"] if all(i in lk for lk in lookups)]
    return ids, np.array([[lk[i] for i in ids] for lk in lookups], dtype=np.float64).reshape(len(entries), -1)


def _entries(runs: Sequence[Mapping[str, Any]], metric: str) -> list[Mapping[str, Any]] | None:
    """The metric's item scores in each run (seed order); None when a run lacks it."""
    out = [r.get("items", {}).get(metric) for r in runs]
    return None if not out or any(e is None or not e["ids"] for e in out) else out  # type: ignore[return-value]


def _estimate(runs: Sequence[Mapping[str, Any]], metric: str, purpose: tuple[str, ...], seed: int) -> Any:
    """Mean over seeds and items with its two-way bootstrap interval (dict), or None."""
    entries = _entries(runs, metric)
    if entries is None:
        return None
    ids, x = aligned_scores(entries)
    if not ids:
        return None
    est = bootstrap_ci(x, rng=stream(seed, *purpose), n_boot=N_BOOT, chance=entries[0].get("chance"))
    return est.to_dict()


def _delta(
    moe: Sequence[Mapping[str, Any]], dense: Sequence[Mapping[str, Any]], metric: str, pid: str, seed: int
) -> dict[str, Any] | None:
    """MoE − dense over the items every run of both arms scored, paired by item and seed."""
    em, ed = _entries(moe, metric), _entries(dense, metric)
    if em is None or ed is None or len(em) != len(ed):
        return None
    ids, x = aligned_scores([*em, *ed])
    if not ids:
        return None
    d = paired_difference(
        x[: len(em)], x[len(em) :], rng=stream(seed, "sweep", "delta", pid, metric), n_boot=N_BOOT
    )
    return {"value": d.diff, **d.to_dict()}


def _by_seed(runs: Sequence[Mapping[str, Any]], arm: str, pid: str) -> list[Mapping[str, Any]]:
    return sorted((r for r in runs if r["arm"] == arm and r["pid"] == pid), key=lambda r: r["seed"])


def summarise(
    recipes: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]], *, seed: int
) -> dict[str, Any]:
    """{"metrics": [...], "rows": [{pid, label, dense_na, cells: {metric: {moe, dense, delta}}}]}.

    recipes: rows with ``pid``, ``label``, ``dense_pid``, ``dense_na``; runs: records with ``arm``,
    ``pid``, ``seed`` and ``items`` ({metric: {"ids", "scores", "chance"}}).
    """
    metrics: list[str] = []
    for r in runs:
        metrics += [m for m in r.get("items", {}) if m not in metrics]
    rows = []
    for rec in recipes:
        pid = rec["pid"]
        moe, dense = _by_seed(runs, "moe", pid), _by_seed(runs, "dense", rec["dense_pid"])
        cells = {}
        for m in metrics:
            dense_cell = (
                DENSE_NA if rec["dense_na"] else _estimate(dense, m, ("sweep", "ci", "dense", pid, m), seed)
            )
            cells[m] = {
                "moe": _estimate(moe, m, ("sweep", "ci", "moe", pid, m), seed),
                "dense": dense_cell,
                "delta": _delta(moe, dense, m, pid, seed),
            }
        rows.append({"pid": pid, "label": rec["label"], "dense_na": rec["dense_na"], "cells": cells})
    return {"metrics": metrics, "rows": rows}
