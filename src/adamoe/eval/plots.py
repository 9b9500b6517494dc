"""Matplotlib figures of routing behaviour, written as PNG.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with their own Agg canvas, never through
``pyplot``: no global figure registry, no GUI backend and no ``matplotlib.use`` call that would switch
the backend of the whole process of whoever imports this module (a notebook, a training script).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from adamoe.stats import SHARPNESS_BINS

__all__ = ["new_figure", "plot_dial", "plot_load_per_layer", "plot_sharpness", "plot_token_load", "save_png"]


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
