"""The one report renderer: cells, intervals, n and chance columns, the three output formats, and plots
that leave the process's matplotlib backend alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adamoe.eval.report import (
    CHANCE_FLAG,
    Bullets,
    Column,
    Figure,
    Heading,
    Paragraph,
    Table,
    json_safe,
    markdown_table,
    paper_table,
    results_table,
    to_html,
    to_markdown,
    write_documents,
    write_report,
)
from adamoe.eval.significance import Estimate

ABOVE = Estimate(value=0.6, low=0.5, high=0.7, n=200, chance=0.25)
AT_CHANCE = {"value": 0.3, "low": 0.2, "high": 0.4, "n": 80, "chance": 0.25}  # a to_dict() mapping


def test_cells_numbers_intervals_n_and_chance_flag() -> None:
    table = Table(
        columns=(
            Column(key="name", label="model"),
            Column(key="acc", label="Acc", digits=1, scale=100),
            Column(key="acc", label="n", part="n"),
            Column(key="acc", label="95% CI", digits=1, scale=100, part="interval"),
            Column(key="acc", label="chance", digits=1, scale=100, part="chance"),
            Column(key="load", label="Load", digits=3),
        ),
        rows=(
            {"name": "a", "acc": ABOVE, "load": 1.5},
            {"name": "b", "acc": AT_CHANCE, "load": None},
            {"name": "c", "acc": 0.125, "load": float("nan")},
        ),
    )
    cells, flagged = table.cells()
    assert cells[0] == ["a", "60.0 [50.0, 70.0]", "200", "[50.0, 70.0]", "25.0", "1.500"]
    assert cells[1] == [
        "b",
        f"30.0 [20.0, 40.0]{CHANCE_FLAG}",
        "80",
        f"[20.0, 40.0]{CHANCE_FLAG}",
        "25.0",
        "–",
    ]
    assert cells[2] == ["c", "12.5", "–", "–", "–", "–"]
    assert flagged


def test_markdown_html_json_of_a_document(tmp_path: Path) -> None:
    table = Table.plain(["model", "x|y"], [["m1", "1"], ["m2", "<b>"]], caption="plain")
    blocks = [
        Heading("Title", 1),
        Paragraph("text"),
        Bullets(("one", "two")),
        table,
        Table(columns=(Column(key="acc", label="Acc", digits=1, scale=100),), rows=({"acc": AT_CHANCE},)),
        Figure(tmp_path / "fig.png", "a plot"),
    ]
    md = to_markdown(blocks)
    assert md.startswith("# Title\n\ntext\n\n- one\n- two\n")
    assert "| model | x\\|y |\n|---|---:|\n| m1 | 1 |" in md
    assert "does not clear the chance level" in md and "![a plot](fig.png)" in md
    page = to_html(blocks, "T")
    assert "<td>&lt;b&gt;</td>" in page and "<caption>plain</caption>" in page and 'src="fig.png"' in page
    paths = write_documents(
        tmp_path, title="T", blocks=blocks, metrics={"x": float("inf"), "e": ABOVE, "t": (1, 2)}
    )
    data = json.loads(paths["metrics"].read_text())
    assert data == {"x": None, "e": {**ABOVE.to_dict()}, "t": [1, 2]}
    assert paths["markdown"].read_text() == md and paths["html"].read_text() == page
    assert json_safe(table)["rows"][1] == {"model": "m2", "x|y": "<b>"}


def test_paper_table_average_row_and_columns(tmp_path: Path) -> None:
    rows = results_table(
        {
            "top-2": [
                {"task": "t1", "n": 10, "acc": 0.5, "acc_norm": None, "load": 2.0, "expert_flops_pct": 100.0},
                {
                    "task": "t2",
                    "n": 30,
                    "acc": ABOVE,
                    "acc_norm": None,
                    "load": 2.0,
                    "expert_flops_pct": 100.0,
                },
            ],
            "dense": [{"task": "t1", "n": 10, "acc": 0.4, "acc_norm": 0.3, "load": None}],
        }
    )
    assert [r["task"] for r in rows] == ["t1", "t2", "average", "t1"]
    avg = rows[2]
    assert (
        avg["n"] == 40
        and avg["acc"] == pytest.approx(0.55)
        and avg["load"] == 2.0
        and avg["acc_norm"] is None
    )
    table = paper_table(rows)
    assert [c.label for c in table.columns] == [
        "model",
        "task",
        "n",
        "Acc",
        "Acc (norm)",
        "Load",
        "expert FLOPs % of top-k",
    ]  # no chance and no model-FLOPs values: those columns are left out
    md = markdown_table(rows)
    assert "| top-2 | t2 | 30 | 60.00 [50.00, 70.00] |" in md
    paths = write_report(tmp_path, title="R", rows=rows, sections=[("Dial", "a\nb")], plots=[("p", "x.png")])
    assert json.loads(paths["metrics"].read_text())["table"][0]["acc"] == 0.5
    assert "<pre>a\nb</pre>" in paths["html"].read_text()


def test_plots_do_not_switch_the_process_backend(tmp_path: Path) -> None:
    code = (
        "import matplotlib; matplotlib.use('svg'); "
        "from adamoe.eval import plots; "
        f"plots.plot_dial([{{'load': 1.0, 'acc': 0.5}}, {{'load': 2.0, 'acc': 0.6}}], __import__('pathlib').Path({str(tmp_path / 'd.png')!r})); "
        "import sys; sys.stdout.write(matplotlib.get_backend()); "
        "sys.stdout.write(' pyplot' if 'matplotlib.pyplot' in sys.modules else '')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "svg"
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
