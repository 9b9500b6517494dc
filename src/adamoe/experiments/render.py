"""How the experiments' tables and plots look: the paper table, the paired tests, Load per layer.

Kept apart from :mod:`adamoe.experiments.tables` (the numbers) so the computations stay short and every
rendering choice (columns, captions that state the test family) is in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["PAIRED_COLUMNS", "paired_caption", "plot_acc_vs_load", "plot_accuracy", "report_tables"]

PAIRED_COLUMNS = (
    ("model", "model", None, 1.0),
    ("task", "task", None, 1.0),
    ("n", "n", None, 1.0),
    ("diff", "Δ acc vs baseline [95% CI]", 1, 100.0),
    ("p", "p", 3, 1.0),
    ("p_holm", "p (Holm)", 3, 1.0),
    ("significant", "significant", None, 1.0),
    ("test", "test", None, 1.0),
)


def report_tables(
    rows: Sequence[Mapping[str, Any]], paired: Sequence[Mapping[str, Any]], loads: Mapping[str, Mapping]
) -> list[Any]:
    """[paper table, paired tests, Load per layer] as :mod:`adamoe.eval.report` tables."""
    from adamoe.eval.report import Column, Table, paper_table

    blocks: list[Any] = [paper_table(rows, caption="Accuracy: mean over seeds [95% CI over seeds x items]")]
    if paired:
        cols = tuple(Column(key=k, label=lab, digits=d, scale=sc) for k, lab, d, sc in PAIRED_COLUMNS)
        shown = [{**r, "significant": "yes" if r.get("significant") else "no"} for r in paired]
        caption = paired_caption(paired)
        blocks.append(Table(columns=cols, rows=tuple(shown), caption=caption))
    variants = [v for v in loads if loads[v]]
    if variants:
        layers = sorted(
            {g for v in variants for g in loads[v]},
            key=lambda g: (not g.isdigit(), int(g) if g.isdigit() else 0, g),
        )
        cells = [[g, *(_fmt(loads[v].get(g)) for v in variants)] for g in layers]
        blocks.append(
            Table.plain(["layer", *variants], cells, caption="Load per layer (true experts per token)")
        )
    return blocks


def paired_caption(paired: Sequence[Mapping[str, Any]]) -> str:
    """The item-level table's caption: what its p-values condition on and the Holm families, counted."""
    per_task = [r for r in paired if r["task"] != "average"]
    averages = [r for r in paired if r["task"] == "average"]
    variants = len({r["model"] for r in paired})
    tasks = len({r["task"] for r in per_task})
    family = f"Holm over the {len(per_task)} per-task tests ({variants} variants x {tasks} tasks)"
    if averages:
        family += f" and, separately, over the {len(averages)} averages"
    return (
        "Item-level paired tests vs the baseline, conditional on the trained models (items resampled, "
        f"seeds paired; they ignore run-to-run variance: see the seed-level table); {family}"
    )


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"


def plot_accuracy(rows: Sequence[Mapping[str, Any]], path: Any) -> Any:
    """Grouped bars: accuracy per task and variant with the 95% interval as error bars; chance dashed."""
    from adamoe.eval.plots import interval_bars, new_figure, save_png

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    variants = list(dict.fromkeys(r["model"] for r in rows))
    fig, ax = new_figure((max(6.0, 1.1 * len(tasks) + 2), 3.6))
    by = {(r["model"], r["task"]): r for r in rows}

    def bar(c: Mapping[str, Any] | None) -> tuple[float, float, float] | None:
        return None if c is None else (100 * c["acc"], 100 * c["acc_ci"]["low"], 100 * c["acc_ci"]["high"])

    interval_bars(
        ax, tasks, {v: [bar(by.get((v, t))) for t in tasks] for v in variants}, ylabel="accuracy (%)"
    )
    x = np.arange(len(tasks))
    chance = [100 * by[(variants[0], t)]["chance"] for t in tasks]
    ax.hlines(chance, x - 0.4, x + 0.4, colors="k", linestyles="dashed", label="chance")
    ax.legend(fontsize=7, ncol=min(len(variants) + 1, 7))
    return save_png(fig, path)


def plot_acc_vs_load(rows: Sequence[Mapping[str, Any]], path: Any) -> Any:
    """Average accuracy (95% interval) against Load, one point per routed variant (paper Fig. 5 style)."""
    from adamoe.eval.plots import new_figure, save_png

    avg = [r for r in rows if r["task"] == "average" and r.get("load") is not None]
    fig, ax = new_figure((5.0, 3.4))
    for r in avg:
        err = [[100 * (r["acc"] - r["acc_ci"]["low"])], [100 * (r["acc_ci"]["high"] - r["acc"])]]
        ax.errorbar([r["load"]], [100 * r["acc"]], yerr=err, marker="o", capsize=3, label=r["model"])
    ax.set_xlabel("Load (true experts per token)")
    ax.set_ylabel("average accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_png(fig, path)
