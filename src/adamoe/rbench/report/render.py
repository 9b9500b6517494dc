"""The side-by-side MoE-RBench report: metrics.json, report.md, report.html and PNG plots.

Rendering goes through the project's one report renderer, `adamoe.eval.report` (documents of
headings, paragraphs, bullets, figures and tables → Markdown and HTML); this module only decides
what the reliability report shows. Everything is rendered in memory first (plots go to PNG bytes)
and only then written, each file atomically, so a failure while rendering leaves no partial report
behind. Rates are shown in percent; routing columns read "–" for dense models.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adamoe.eval.report import Bullets, Figure, Heading, Paragraph, Table, json_safe, to_html, to_markdown
from adamoe.rbench.report.details import example_lines, note_lines, routing_table
from adamoe.rbench.report.plots import render_plots
from adamoe.rbench.report.tables import dimension_table, group_tables, ood_table
from adamoe.utils.io import atomic_save_json, atomic_write_bytes, atomic_write_text

__all__ = ["REPORT_FILES", "markdown_summary", "render_report", "write_report"]

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
    info = [f"{m}: {_model_line(result['results'][m])}" for m in models]
    blocks.append(Paragraph("Models — " + "; ".join(info)))
    blocks.append(Paragraph("Set sizes — " + "; ".join(f"{d}: {s}" for d, s in result["sizes"].items())))
    for dim in result["dims"]:
        blocks += _dimension_blocks(result, dim)
    if plots:
        blocks.append(Heading("plots", 2))
        blocks += [Figure(name, caption) for name, (caption, _) in plots.items()]
    return blocks


def render_report(result: Mapping[str, Any], *, plots: bool = True) -> dict[str, bytes]:
    """Every report file as bytes (nothing written yet): metrics.json is written separately."""
    result = json_safe(result)
    pngs = render_plots(result) if plots else {}
    blocks = _blocks(result, pngs)
    files = {
        "report.md": to_markdown(blocks).encode("utf-8"),
        "report.html": to_html(blocks, str(result.get("title", "MoE-RBench"))).encode("utf-8"),
    }
    files.update({name: data for name, (_, data) in pngs.items()})
    return files


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
    """Render everything in memory, then write metrics.json, report.md, report.html and the PNGs atomically."""
    run_dir = Path(run_dir)
    clean = json_safe(result)
    files = render_report(clean, plots=plots)
    paths = {
        name: atomic_write_bytes(run_dir / name, data)
        for name, data in files.items()
        if name.endswith(".png")
    }
    paths["report.md"] = atomic_write_text(run_dir / "report.md", files["report.md"].decode("utf-8"))
    paths["report.html"] = atomic_write_text(run_dir / "report.html", files["report.html"].decode("utf-8"))
    clean["tables"] = {dim: dimension_table(clean, dim).to_dict() for dim in clean["dims"]}
    paths["metrics.json"] = atomic_save_json(run_dir / "metrics.json", clean)
    return paths
