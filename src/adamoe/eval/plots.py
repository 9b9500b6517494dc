"""Matplotlib figures of routing behaviour, written as PNG.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with their own Agg canvas, never through
``pyplot``: no global figure registry, no GUI backend and no ``matplotlib.use`` call that would switch
the backend of the whole process of whoever imports this module (a notebook, a training script).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from adamoe.stats import SHARPNESS_BINS

__all__ = [
    "Bar",
    "interval_bars",
    "new_figure",
    "panel_figure",
    "plot_dial",
    "plot_load_per_layer",
    "plot_sharpness",
    "plot_token_load",
    "png_bytes",
    "save_png",
]

Bar = tuple[float, float, float] | None
"""(value, low, high) of one bar, or None for no value."""


def new_figure(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A standalone figure with one axes (its own Agg canvas; pyplot's state is never touched)."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically (temporary file + rename), so a killed run leaves no half PNG."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def png_bytes(fig: Figure) -> bytes:
    """``fig`` as PNG bytes (for reports rendered in memory before any file is written)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def panel_figure(
    panels: Sequence[Any],
    draw: Callable[[Axes, Any], None],
    *,
    size: tuple[float, float],
    ncols: int = 2,
    every_legend: bool = False,
) -> Figure:
    """A figure with one axes of `size` inches per panel, `ncols` a row; `draw(ax, panel)` fills each.
    The legend sits right of the last axes (of every axes with `every_legend`, for panels whose lines
    differ), so it never covers data; unused axes are hidden."""
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for k, (ax, panel) in enumerate(zip(axes, panels)):
        draw(ax, panel)
        ax.grid(alpha=0.3)
        if (every_legend or k == len(panels) - 1) and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return fig


def interval_bars(
    ax: Axes, labels: Sequence[str], series: Mapping[str, Sequence[Bar]], **titles: Any
) -> None:
    """Grouped bars per label (x position i) and series, each with its 95% interval as an error bar;
    `titles`: ``ax.set(...)`` fields. A percentile interval need not contain its point value (skewed or
    tiny samples): the error bar is clipped at the value then."""
    width = 0.8 / max(len(series), 1)
    for j, (name, bars) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(labels))]
        err = [
            [max(b[0] - b[1], 0.0) if b else 0.0 for b in bars],
            [max(b[2] - b[0], 0.0) if b else 0.0 for b in bars],
        ]
        vals = [b[0] if b else float("nan") for b in bars]
        ax.bar(xs, vals, width=width, label=name, yerr=err, capsize=2, error_kw={"elinewidth": 0.8})
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    ax.set(**titles)


def plot_sharpness(layers: dict[str, dict[str, Any]], path: Path, *, title: str) -> Path:
    """Stacked bars per layer: share of tokens needing 1, 2, 3, 4+ experts for 50% of router mass."""
    names = list(layers)
    fig, ax = new_figure((max(5, 0.5 * len(names) + 2), 3.2))
    bottom = [0.0] * len(names)
    for b in SHARPNESS_BINS:
        vals = [layers[n]["sharpness"][b] for n in names]
        ax.bar(range(len(names)), vals, bottom=bottom, label=f"{b} expert(s)")
        bottom = [x + y for x, y in zip(bottom, vals)]
    ax.set_xticks(range(len(names)), [str(i) for i in range(len(names))])
    ax.set_xlabel("MoE layer")
    ax.set_ylabel("share of tokens")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    return save_png(fig, path)


def plot_load_per_layer(models: dict[str, dict[str, dict[str, Any]]], path: Path) -> Path:
    """Load (true experts per token) per layer, one line per model."""
    fig, ax = new_figure((6, 3.2))
    for label, layers in models.items():
        ax.plot(range(len(layers)), [s["load"] for s in layers.values()], marker="o", label=label)
    ax.set_xlabel("MoE layer")
    ax.set_ylabel("load (true experts / token)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def plot_dial(
    points: list[dict[str, float]], path: Path, *, baseline: dict[str, float] | None = None
) -> Path:
    """Accuracy vs load along the compute dial (null-logit bias), with the top-k baseline marked."""
    fig, ax = new_figure((5, 3.2))
    pts = sorted(points, key=lambda p: p["load"])
    ax.plot([p["load"] for p in pts], [p["acc"] for p in pts], marker="o", label="AdaMoE + null bias")
    if baseline:
        ax.scatter(
            [baseline["load"]], [baseline["acc"]], color="red", marker="*", s=120, label="top-k baseline"
        )
    ax.set_xlabel("load (true experts / token)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def plot_token_load(tokens: list[str], loads: list[float], path: Path, *, title: str) -> Path:
    """Per-token load (mean over layers) on one text: which tokens get more experts."""
    fig, ax = new_figure((max(6, 0.35 * len(tokens)), 3))
    ax.bar(range(len(tokens)), loads)
    ax.set_xticks(range(len(tokens)), tokens, rotation=70, fontsize=7)
    ax.set_ylabel("true experts (mean over layers)")
    ax.set_title(title)
    return save_png(fig, path)
