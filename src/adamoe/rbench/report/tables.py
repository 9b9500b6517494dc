"""The report's metric tables, built from the suite's result dict as `adamoe.eval.report.Table`s.

One table per dimension: a row per metric with its direction, n, chance level, each model's value
with its 95% interval (flagged † by the renderer when the interval does not clear chance), and one
paired-delta column per model pair (`uncertainty.model_pairs`: every model against the first, each
later model against the one before) — "+2.4 [0.8, 4.0] p=0.003", starred when significant after
Holm's correction within the dimension, or "identical outputs" when the two models chose and wrote
exactly the same on every input. Below it, per-shift (OOD) and per-group (subtask, ANLI round) tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adamoe.eval.report import DASH, Column, Table
from adamoe.rbench.dimensions.base import metric_direction

__all__ = ["delta_cell", "dimension_table", "group_tables", "keys_over_models", "metric_names", "ood_table"]

PCT = {"digits": 1, "scale": 100.0}


def keys_over_models(result: Mapping[str, Any], dim: str, *path: str) -> list[str]:
    """Every key of the mapping at `path` in each model's `dim` result, over the models, first seen first."""
    return list(
        dict.fromkeys(k for m in result["models"] for k in _dig(result["results"][m]["dims"][dim], path))
    )


def metric_names(result: Mapping[str, Any], dim: str) -> list[str]:
    """Every metric of `dim` over the models, in first-seen order."""
    return keys_over_models(result, dim, "metrics")


def delta_cell(comparison: Mapping[str, Any], metric: str) -> str:
    """A paired difference in percentage points with its interval and p, or why there is none."""
    if comparison.get("identical"):
        return "identical outputs"
    d = comparison.get("metrics", {}).get(metric)
    if d is None:
        return DASH
    star = " *" if d.get("p_holm", d["p"]) < d.get("alpha", 0.05) else ""
    return f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] p={d['p']:.2g}{star}"


def _n_text(ests: list[Mapping[str, Any] | None]) -> str:
    ns = list(dict.fromkeys(int(e["n"]) for e in ests if e and e.get("n") is not None))
    return "/".join(map(str, ns)) if ns else DASH


def dimension_table(result: Mapping[str, Any], dim: str) -> Table:
    """Rows = metrics of `dim`: direction, n, chance, each model's value [95% CI], paired deltas."""
    models = result["models"]
    comps = result.get("comparisons", {}).get(dim, {})
    rows = []
    for name in metric_names(result, dim):
        ests = [result["results"][m]["dims"][dim].get("estimates", {}).get(name) for m in models]
        chance = next((e.get("chance") for e in ests if e and e.get("chance") is not None), None)
        row: dict[str, Any] = {"metric": name, "better": metric_direction(name), "n": _n_text(ests)}
        row["chance"] = chance
        for m, est in zip(models, ests):
            row[m] = est if est is not None else result["results"][m]["dims"][dim]["metrics"].get(name)
        row.update({label: delta_cell(c, name) for label, c in comps.items()})
        rows.append(row)
    columns = [
        Column(key="metric", label="metric (%)"),
        Column(key="better", label="better"),
        Column(key="n", label="n"),
        Column(key="chance", label="chance", **PCT),
        *[Column(key=m, label=f"{m} [95% CI]", **PCT) for m in models],
        *[Column(key=label, label=f"Δ {label} (pp) [95% CI]") for label in comps],
    ]
    caption = f"{dim}: metrics in percent; Δ = paired difference on the same items (* significant after Holm)"
    return Table(columns=tuple(columns), rows=tuple(rows), caption=caption)


def ood_table(result: Mapping[str, Any]) -> Table:
    """Rows = each shifted set: kind, items changed, counted or not, per model accuracy and gap [CI]."""
    models = result["models"]
    rows = []
    for k in keys_over_models(result, "ood", "details", "shifts"):
        first = next(
            result["results"][m]["dims"]["ood"]["details"]["shifts"][k]
            for m in models
            if k in result["results"][m]["dims"]["ood"]["details"]["shifts"]
        )
        changed = f"{first['changed']}/{first['n']}" if "changed" in first else DASH
        row: dict[str, Any] = {
            "set": k,
            "kind": first["kind"],
            "changed": changed,
            "counted": "yes" if first.get("counted", True) else "no (no-op shift)",
        }
        for m in models:
            s = result["results"][m]["dims"]["ood"]["details"]["shifts"].get(k) or {}
            row[f"{m}:acc"], row[f"{m}:gap"] = s.get("acc"), s.get("gap")
        rows.append(row)
    columns = [
        Column(key="set", label="set"),
        Column(key="kind", label="shift"),
        Column(key="changed", label="items changed"),
        Column(key="counted", label="pooled"),
    ]
    for m in models:
        columns += [
            Column(key=f"{m}:acc", label=f"{m} acc % [95% CI]", **PCT),
            Column(key=f"{m}:gap", label=f"{m} gap (pp, chance-normalised)", **PCT),
        ]
    caption = (
        "OOD sets: accuracy and ID−OOD gap of chance-normalised accuracy (p Holm-adjusted across sets in "
        "the JSON); no-op shifts are not pooled"
    )
    return Table(columns=tuple(columns), rows=tuple(rows), caption=caption)


def _group_sources(result: Mapping[str, Any], dim: str) -> dict[str, list[str]]:
    """{table title: path of keys into details} for every per-group estimate mapping of `dim`."""
    details = result["results"][result["models"][0]]["dims"][dim]["details"]
    out: dict[str, list[str]] = {}
    if details.get("clean_by_group"):
        out["clean accuracy by group"] = ["clean_by_group"]
    for name, a in (details.get("attacks") or {}).items():
        if a.get("by_group"):
            out[f"accuracy on the fixed {name} set by task"] = ["attacks", name, "by_group"]
    return out


def _dig(d: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any]:
    for key in path:
        d = (d or {}).get(key) or {}
    return d


def group_tables(result: Mapping[str, Any], dim: str) -> list[Table]:
    """One table per per-group breakdown (ANLI rounds / attacked tasks)."""
    models = result["models"]
    tables = []
    for title, path in _group_sources(result, dim).items():
        per_model = {m: _dig(result["results"][m]["dims"][dim]["details"], path) for m in models}
        groups = list(dict.fromkeys(g for v in per_model.values() for g in v))
        rows = []
        for g in groups:
            ests = [per_model[m].get(g) for m in models]
            rows.append({"group": g, "n": _n_text(ests), **{m: e for m, e in zip(models, ests)}})
        columns = [Column(key="group", label="group"), Column(key="n", label="n")]
        columns += [Column(key=m, label=f"{m} % [95% CI]", **PCT) for m in models]
        tables.append(Table(columns=tuple(columns), rows=tuple(rows), caption=f"{dim}: {title}"))
    return tables
