"""The sweep's table: one row per point (knobs, headline metrics in percent, routing drift), MD and HTML."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adamoe.eval.report import Heading, Paragraph, Table, json_safe, to_html, to_markdown
from adamoe.rbench.dimensions.base import metric_direction
from adamoe.rbench.report.values import DASH
from adamoe.utils.io import atomic_save_json, atomic_write_text

__all__ = ["sweep_table", "write_sweep"]


def _fmt(key: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return DASH
    if key.endswith(".js"):
        return f"{v:.2e}"
    if key.endswith(".dload"):
        return f"{v:+.3f}"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{100 * v:.1f}"
    return str(v)


def sweep_table(result: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per point: id, label, knobs, headline metrics (percent), routing drift of MoE models."""
    rows = result["rows"]
    knobs = list(result["grid"])
    metrics: list[str] = []
    routing: list[str] = []
    for r in rows:
        metrics += [k for k in r["metrics"] if k not in metrics]
        routing += [k for k in r["routing"] if k not in routing]
    headers = [
        "point",
        "label",
        *knobs,
        *[f"{m} {metric_direction(m.split('.', 1)[1])}".strip() for m in metrics],
        *routing,
    ]
    table = []
    for r in rows:
        kn = r["knobs"] or {}
        table.append(
            [
                r["id"],
                r["label"],
                *[str(kn.get(k, DASH)) for k in knobs],
                *[_fmt(m, r["metrics"].get(m)) for m in metrics],
                *[_fmt(k, r["routing"].get(k)) for k in routing],
            ]
        )
    return headers, table


def write_sweep(run_dir: str | Path, result: Mapping[str, Any]) -> dict[str, Path]:
    """sweep.json, sweep.md and sweep.html (rendered first, then each written atomically)."""
    run_dir = Path(run_dir)
    blocks = [
        Heading(f"MoE-RBench sweep — {result['model']} ({result['mode']})", 1),
        Paragraph(
            "Metrics in percent; `.js` = mean JS divergence (bits) of expert histograms vs clean inputs, "
            "`.dload` = mean load shift vs clean."
        ),
        Table.plain(*sweep_table(result)),
    ]
    md, page = to_markdown(blocks), to_html(blocks, "MoE-RBench sweep")
    return {
        "sweep.json": atomic_save_json(run_dir / "sweep.json", json_safe(result)),
        "sweep.md": atomic_write_text(run_dir / "sweep.md", md),
        "sweep.html": atomic_write_text(run_dir / "sweep.html", page),
    }
