"""The side-by-side MoE-RBench report: metrics.json, report.md, report.html and PNG plots.

Rendering and writing go through the project's one report renderer, `adamoe.eval.report` (documents
of headings, paragraphs, bullets, figures and tables → Markdown and HTML, written atomically); this
module only decides what the reliability report shows. Plots (PNG bytes) and the document are built in
memory before any file is written, so a failure while building them leaves no partial report behind.
Rates are shown in percent; routing columns read "–" for dense models.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adamoe.eval.report import (
    Bullets,
    Figure,
    Heading,
    Paragraph,
    Table,
    json_safe,
    to_markdown,
    write_documents,
)
from adamoe.rbench.report.details import example_lines, note_lines, routing_table
from adamoe.rbench.report.plots import render_plots
from adamoe.rbench.report.tables import dimension_table, group_tables, ood_table
from adamoe.utils.io import atomic_write_bytes

__all__ = ["REPORT_FILES", "markdown_summary", "write_report"]

REPORT_FILES = ("metrics.json", "report.md", "report.html")

Block = Heading | Paragraph | Bullets | Figure | Table


def _dimension_blocks(result: Mapping[str, Any], dim: str) -> list[Block]:
    blocks: list[Block] = [Heading(dim, 2), dimension_table(result, dim)]
    same = identical_lines(result, dim)
    if same:
        blocks.append(Bullets(tuple(same)))
    if dim == "ood":
        blocks.append(ood_table(result))
    blocks += group_tables(result, dim)
    notes = note_lines(result, dim)
    if notes:
        blocks.append(Bullets(tuple(notes)))
    blocks.append(Heading(f"{dim}: routing", 3))
    blocks.append(routing_table(result, dim))
    ex = example_lines(result, dim)
    if ex:
        blocks += [Heading(f"{dim}: examples", 3), Bullets(tuple(ex))]
    return blocks


def identical_lines(result: Mapping[str, Any], dim: str) -> list[str]:
    """A sentence per model pair whose outputs on `dim` were identical (so no delta is shown)."""
    return [
        f"{c['model']} and {c['reference']} picked the same choices and generated the same texts on every "
        f"{dim} input: their outputs are identical, so no difference is reported."
        for c in result.get("comparisons", {}).get(dim, {}).values()
        if c.get("identical")
    ]


def _model_line(r: Mapping[str, Any]) -> str:
    """Kind, time, and the fine-tuning every model got (same recipe for all; steps and final loss)."""
    line = f"{r['info'].get('kind', '?')}, {r['seconds']:.1f}s"
    ft = r.get("finetune")
    if not ft:
        return f"{line}, not fine-tuned"
    loss = ft.get("final_loss")
    cached = " (cached)" if ft.get("cached") else ""
    return f"{line}, fine-tuned {ft.get('steps')} steps{cached}, final loss {'–' if loss is None else f'{loss:.3f}'}"


def _blocks(result: Mapping[str, Any], plots: Mapping[str, tuple[str, bytes]]) -> list[Block]:
    models = result["models"]
    blocks: list[Block] = [Heading(result.get("title", "MoE-RBench"), 1)]
    if result.get("command"):
        blocks.append(Paragraph(f"Command: `{result['command']}`"))
    info = [f"{m}: {_model_line(result['results'][m])}" for m in models]
    blocks.append(Paragraph("Models — " + "; ".join(info)))
    blocks.append(Paragraph("Set sizes — " + "; ".join(f"{d}: {s}" for d, s in result["sizes"].items())))
    for dim in result["dims"]:
        blocks += _dimension_blocks(result, dim)
    if plots:
        blocks.append(Heading("plots", 2))
        blocks += [Figure(name, caption) for name, (caption, _) in plots.items()]
    return blocks


def markdown_summary(result: Mapping[str, Any]) -> str:
    """The headline tables only (printed by the CLI)."""
    blocks: list[Block] = []
    for dim in result["dims"]:
        blocks += [
            Heading(dim, 3),
            dimension_table(result, dim),
            Bullets(tuple(identical_lines(result, dim))),
        ]
    return to_markdown(blocks)


def write_report(run_dir: str | Path, result: Mapping[str, Any], *, plots: bool = True) -> dict[str, Path]:
    """Plots (PNG bytes) and the document built in memory, then the PNGs, metrics.json (with the headline
    tables), report.md and report.html written, each atomically (`adamoe.eval.report.write_documents`)."""
    run_dir = Path(run_dir)
    clean = json_safe(result)
    pngs = render_plots(clean) if plots else {}
    blocks = _blocks(clean, pngs)
    clean["tables"] = {dim: dimension_table(clean, dim).to_dict() for dim in clean["dims"]}
    paths = {name: atomic_write_bytes(run_dir / name, data) for name, (_, data) in pngs.items()}
    title = str(clean.get("title", "MoE-RBench"))
    written = write_documents(run_dir, title=title, blocks=blocks, metrics=clean)
    return {
        **paths,
        "metrics.json": written["metrics"],
        "report.md": written["markdown"],
        "report.html": written["html"],
    }
