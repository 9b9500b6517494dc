"""The one report renderer: documents of headings, paragraphs, lists, figures and tables, written as
Markdown, HTML and JSON (``report.md``, ``report.html``, ``metrics.json``) into a run directory.

Why one: every number a report shows carries its n and 95% interval and is read against chance, and
that should look and mean the same in ``adamoe eval``, the demo, the reproductions and MoE-RBench. A
:class:`Table` therefore takes typed :class:`Column` specs over row mappings (or plain header + cell
lists for pre-formatted tables); a cell may be a number, text, None (shown as "–") or an interval
estimate (anything with ``value``/``low``/``high``/``n``/``chance``, e.g.
:class:`adamoe.eval.significance.Estimate` or its ``to_dict()``), rendered "41.3 [37.0, 45.6]" and
flagged † when its interval does not clear chance. Columns may show an estimate's ``n``, interval or
chance level on their own (``part``).

The AdaMoE paper table (Acc, Load, both FLOPs figures per model and task) is built on it:
:func:`results_table`, :func:`paper_table`, :func:`markdown_table`, :func:`write_report`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adamoe.utils.io import atomic_save_json, atomic_write_text

__all__ = [
    "CHANCE_FLAG",
    "Bullets",
    "Column",
    "Figure",
    "Heading",
    "Paragraph",
    "Table",
    "json_safe",
    "markdown_table",
    "paper_table",
    "results_table",
    "to_html",
    "to_markdown",
    "write_documents",
    "write_report",
]

DASH = "–"
CHANCE_FLAG = "†"
_CHANCE_NOTE = f"{CHANCE_FLAG} the 95% interval does not clear the chance level."


@dataclass(frozen=True, kw_only=True)
class Column:
    """How one column reads its cell from a row and formats it.

    ``key``: mapping key (or index into a sequence row). ``digits``: decimals for numbers (None = as
    is); ``scale`` multiplies numbers and intervals (100 for percentages). ``part``: "value" (number or
    estimate, with its interval when ``interval``), "interval" ("[low, high]"), "n" or "chance" of an
    estimate cell.
    """

    key: str | int
    label: str
    digits: int | None = None
    scale: float = 1.0
    part: Literal["value", "interval", "n", "chance"] = "value"
    interval: bool = True

    def read(self, row: Mapping[str, Any] | Sequence[Any]) -> Any:
        """This column's cell of ``row`` (a mapping by key or a sequence by index); None when absent."""
        if isinstance(row, Mapping):
            return row.get(str(self.key))
        return row[self.key] if isinstance(self.key, int) and self.key < len(row) else None

    def format(self, cell: Any) -> tuple[str, bool]:
        """(text, flagged): flagged when the cell is an estimate whose interval does not clear chance."""
        est = _estimate(cell)
        if est is None:
            return (_number(cell, self.digits, self.scale), False) if self.part == "value" else (DASH, False)
        value, low, high, n, chance = est
        if self.part == "n":
            return (DASH if n is None else str(int(n))), False
        if self.part == "chance":
            return _number(chance, self.digits, self.scale), False
        span = f"[{_number(low, self.digits, self.scale)}, {_number(high, self.digits, self.scale)}]"
        flagged = chance is not None and low is not None and not low > chance
        if self.part == "interval":
            return span, flagged
        text = _number(value, self.digits, self.scale)
        return (f"{text} {span}" if self.interval and low is not None else text), flagged


def _estimate(cell: Any) -> tuple[Any, Any, Any, Any, Any] | None:
    """(value, low, high, n, chance) of an interval estimate (object or mapping), else None."""
    if isinstance(cell, Mapping):
        if "value" in cell and "low" in cell and "high" in cell:
            return cell["value"], cell["low"], cell["high"], cell.get("n"), cell.get("chance")
        return None
    if all(hasattr(cell, a) for a in ("value", "low", "high")):
        return cell.value, cell.low, cell.high, getattr(cell, "n", None), getattr(cell, "chance", None)
    return None


def _number(value: Any, digits: int | None, scale: float) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    scaled = value * scale if scale != 1.0 else value
    return str(scaled) if digits is None else f"{scaled:.{digits}f}"


@dataclass(frozen=True, kw_only=True)
class Table:
    """Rows (mappings or sequences) under typed columns; ``caption`` is shown above the table."""

    columns: tuple[Column, ...]
    rows: tuple[Any, ...]
    caption: str = ""

    @classmethod
    def plain(cls, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str = "") -> Table:
        """A table of already formatted cells (column i reads position i of each row)."""
        return cls(
            columns=tuple(Column(key=i, label=h) for i, h in enumerate(headers)),
            rows=tuple(rows),
            caption=caption,
        )

    @property
    def headers(self) -> list[str]:
        return [c.label for c in self.columns]

    def cells(self) -> tuple[list[list[str]], bool]:
        """Formatted cells and whether any carries the chance flag."""
        out, any_flag = [], False
        for row in self.rows:
            line = []
            for col in self.columns:
                text, flagged = col.format(col.read(row))
                line.append(text + CHANCE_FLAG if flagged else text)
                any_flag = any_flag or flagged
            out.append(line)
        return out, any_flag

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the raw cells (estimates as their mappings), not the formatted text."""
        rows = [{c.label: json_safe(c.read(r)) for c in self.columns} for r in self.rows]
        return {"caption": self.caption, "columns": self.headers, "rows": rows}


@dataclass(frozen=True)
class Heading:
    """A section heading of ``level`` (2 = ``##``)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Text; ``pre`` keeps its line breaks and spacing in HTML (a block of preformatted lines)."""

    text: str
    pre: bool = False


@dataclass(frozen=True)
class Bullets:
    """A bulleted list, one item per entry."""

    items: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Figure:
    """A PNG beside the report (``path`` relative to the run directory, or its file name is used)."""

    path: str | Path
    caption: str = ""


Block = Heading | Paragraph | Bullets | Figure | Table


def json_safe(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None (strict JSON has none), tuples -> lists, keys -> str, estimates
    and other objects with ``to_dict()`` -> their mapping."""
    if hasattr(obj, "to_dict") and not isinstance(obj, type):
        obj = obj.to_dict()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    cells, flagged = table.cells()
    out = [f"*{table.caption}*", ""] if table.caption else []
    out.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
    out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.columns))) + "|")
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in cells]
    return out + (["", _CHANCE_NOTE] if flagged else []) + [""]


def to_markdown(blocks: Sequence[Block]) -> str:
    """Markdown of a document (tables as pipe tables, first column left-aligned)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Paragraph):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {_md_cell(item)}" for item in b.items] + [""]
        elif isinstance(b, Figure):
            out += [f"![{b.caption}]({Path(b.path).name})", ""]
        elif isinstance(b, Table):
            out += _md_table(b)
    return "\n".join(out)


def _html_block(b: Block) -> str:
    e = html.escape
    if isinstance(b, Heading):
        return f"<h{b.level}>{e(b.text)}</h{b.level}>"
    if isinstance(b, Paragraph):
        return f"<pre>{e(b.text)}</pre>" if b.pre else f"<p>{e(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{e(str(i))}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Figure):
        name, cap = e(Path(b.path).name), e(b.caption)
        return f'<figure><img src="{name}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'
    cells, flagged = b.cells()
    head = "".join(f"<th>{e(h)}</th>" for h in b.headers)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in cells)
    caption = f"<caption>{e(b.caption)}</caption>" if b.caption else ""
    note = f"<p class='note'>{e(_CHANCE_NOTE)}</p>" if flagged else ""
    return f"<table>{caption}<tr>{head}</tr>{body}</table>{note}"


def to_html(blocks: Sequence[Block], title: str) -> str:
    """A standalone HTML page of a document (figures referenced by file name)."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
        "margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}.note{font-size:90%}</style>"
        "</head><body>" + "".join(_html_block(b) for b in blocks) + "</body></html>"
    )


def write_documents(
    run_dir: str | Path, *, title: str, blocks: Sequence[Block], metrics: Mapping[str, Any]
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``metrics.json`` (JSON-safe) atomically into ``run_dir``."""
    run_dir = Path(run_dir)
    return {
        "metrics": atomic_save_json(run_dir / "metrics.json", json_safe(metrics)),
        "markdown": atomic_write_text(run_dir / "report.md", to_markdown(blocks)),
        "html": atomic_write_text(run_dir / "report.html", to_html(blocks, title)),
    }


# ---------------------------------------------------------------- the paper table

PAPER_COLUMNS = (
    Column(key="model", label="model"),
    Column(key="weights", label="weights"),
    Column(key="task", label="task"),
    Column(key="n", label="n"),
    Column(key="acc", label="Acc", digits=2, scale=100),
    Column(key="acc_ci", label="95% CI", digits=1, scale=100, part="interval"),
    Column(key="acc_norm", label="Acc (norm)", digits=2, scale=100),
    Column(key="acc_norm_ci", label="95% CI (norm)", digits=1, scale=100, part="interval"),
    Column(key="chance", label="chance", digits=1, scale=100),
    Column(key="load", label="Load", digits=3),
    Column(key="expert_flops_pct", label="expert FLOPs % of top-k", digits=1),
    Column(key="model_flops_pct", label="model FLOPs % of top-k", digits=1),
)
"""Acc cells may be plain rates or interval estimates; FLOPs columns are the two figures of
:mod:`adamoe.eval.flops`."""

_AVERAGED = ("acc", "acc_norm", "chance", "load", "expert_flops_pct", "model_flops_pct")


def _value(x: Any) -> Any:
    est = _estimate(x)
    return est[0] if est is not None else x


def results_table(rows_by_model: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Flatten {model: [task rows]} into rows with an average row per model (the paper's layout).

    The average is the unweighted mean over tasks of each column's point value (as the paper does).
    """
    out: list[dict[str, Any]] = []
    for model, rows in rows_by_model.items():
        out += [{"model": model, **r} for r in rows]
        if len(rows) > 1:
            avg: dict[str, Any] = {"model": model, "task": "average", "n": sum(r["n"] for r in rows)}
            for key in _AVERAGED:
                vals = [_value(r[key]) for r in rows if _value(r.get(key)) is not None]
                avg[key] = sum(vals) / len(vals) if vals else None
            out.append(avg)
    return out


def paper_table(rows: Sequence[Mapping[str, Any]], *, caption: str = "") -> Table:
    """The paper's table over :func:`results_table` rows (columns without any value are left out)."""
    always = ("model", "task", "n")
    keep = [c for c in PAPER_COLUMNS if c.key in always or any(r.get(str(c.key)) is not None for r in rows)]
    return Table(columns=tuple(keep), rows=tuple(rows), caption=caption)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The paper table as Markdown (what the CLI prints)."""
    return to_markdown([paper_table(rows)]).rstrip("\n")


def write_report(
    run_dir: str | Path,
    *,
    title: str,
    rows: Sequence[Mapping[str, Any]],
    sections: Sequence[tuple[str, str]] = (),
    plots: Sequence[tuple[str, str | Path]] = (),
    tables: Sequence[Table] = (),
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """The paper table, extra ``tables``, ``sections`` (heading, text) and ``plots`` (caption, PNG path)
    as ``metrics.json`` (``{"title", "table": rows, "tables": [...], **metrics}``), ``report.md`` and
    ``report.html``."""
    blocks: list[Block] = [Heading(title, 1), paper_table(rows), *tables]
    for heading, text in sections:
        blocks += [Heading(heading, 2), Paragraph(text, pre=True)]
    blocks += [Figure(path, caption) for caption, path in plots]
    data = {"title": title, "table": list(rows), "tables": [t.to_dict() for t in tables], **(metrics or {})}
    return write_documents(run_dir, title=title, blocks=blocks, metrics=data)
