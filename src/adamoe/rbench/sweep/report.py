"""The sweep's report in the paper's shape: rows = recipes; per metric the MoE, the dense model and MoE − dense.

Rendered by the one renderer, `adamoe.eval.report` (estimates as "41.3 [37.0, 45.6]", † when the
interval does not clear chance); one table per dimension, and `sweep_table` for the whole sweep as
formatted cells (the CLI prints it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adamoe.eval.report import Column, Heading, Paragraph, Table, json_safe, to_html, to_markdown
from adamoe.rbench.dimensions.base import metric_direction
from adamoe.rbench.sweep.stats import DENSE_NA
from adamoe.utils.io import atomic_save_json, atomic_write_text

__all__ = ["sweep_table", "sweep_tables", "write_sweep"]

_ARMS = (("moe", "MoE"), ("dense", "dense"), ("delta", "MoE − dense"))


def _columns(metrics: Sequence[str]) -> list[Column]:
    cols = [Column(key="recipe", label="recipe")]
    for m in metrics:
        name = f"{m} {metric_direction(m.split('.', 1)[-1])}".strip()
        cols += [
            Column(key=f"{m}|{arm}", label=f"{name} {label}", digits=1, scale=100.0) for arm, label in _ARMS
        ]
        cols.append(Column(key=f"{m}|moe", label=f"{m} n", part="n"))
    return cols


def _table(summary: Mapping[str, Any], metrics: Sequence[str], caption: str = "") -> Table:
    rows = []
    for r in summary["rows"]:
        row: dict[str, Any] = {"recipe": r["label"]}
        for m in metrics:
            row.update({f"{m}|{arm}": r["cells"][m][arm] for arm, _ in _ARMS})
        rows.append(row)
    return Table(columns=tuple(_columns(metrics)), rows=tuple(rows), caption=caption)


def sweep_tables(result: Mapping[str, Any]) -> list[Table]:
    """One table per dimension (metrics named '<dim>.<metric>'), rows = recipes."""
    summary = result["summary"]
    by_dim: dict[str, list[str]] = {}
    for m in summary["metrics"]:
        by_dim.setdefault(m.split(".", 1)[0], []).append(m)
    return [_table(summary, ms, caption=dim) for dim, ms in by_dim.items()]


def sweep_table(result: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the whole sweep in one table (every metric)."""
    table = _table(result["summary"], result["summary"]["metrics"])
    return table.headers, table.cells()[0]


def _notes(result: Mapping[str, Any]) -> str:
    seeds = result["seeds"]
    return (
        f"MoE `{result['model']}` and dense `{result['dense']}`, each fine-tuned with every recipe "
        f"({result['mode']}; {len(seeds)} seeds {seeds}, {result['train_items']} training items, the same data "
        "order for both arms of a seed). Values in percent: mean over seeds and items with a 95% bootstrap "
        "interval over items and seeds; MoE − dense is paired by item and seed; n = items scored in every "
        "MoE run (the delta keeps those every dense run scored too). "
        f"{DENSE_NA}: the recipe changes only expert/router knobs, so the dense model was not re-run; its "
        "MoE − dense compares with the dense run of the remaining knobs (the baseline)."
    )


def write_sweep(run_dir: str | Path, result: Mapping[str, Any]) -> dict[str, Path]:
    """sweep.json, sweep.md and sweep.html (rendered first, then each written atomically)."""
    run_dir = Path(run_dir)
    blocks: list[Any] = [Heading("MoE-RBench recipe sweep: MoE vs dense", 1), Paragraph(_notes(result))]
    for table in sweep_tables(result):
        blocks.append(table)
    md, page = to_markdown(blocks), to_html(blocks, "MoE-RBench sweep")
    return {
        "sweep.json": atomic_save_json(run_dir / "sweep.json", json_safe(result)),
        "sweep.md": atomic_write_text(run_dir / "sweep.md", md),
        "sweep.html": atomic_write_text(run_dir / "sweep.html", page),
    }
