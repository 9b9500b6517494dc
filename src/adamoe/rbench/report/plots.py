"""The report's PNG plots, drawn on `matplotlib.figure.Figure` objects (no pyplot, no global backend).

Each plot is a function of the suite's result dict returning (caption, PNG bytes).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from adamoe.rbench.report.tables import headline_table

__all__ = ["render_plots"]

Plot = tuple[str, bytes]


def _figure(ncols: int, *, width: float, height: float) -> tuple[Any, list[Any]]:
    """A new `Figure` (its own canvas, no pyplot state) with one row of `ncols` axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _grouped_bars(ax: Any, labels: Sequence[str], series: Mapping[str, Sequence[float | None]]) -> None:
    n = max(len(series), 1)
    width = 0.8 / n
    for j, (name, vals) in enumerate(series.items()):
        xs = [i + (j - (n - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, [float("nan") if v is None else v for v in vals], width=width, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    ax.grid(axis="y", alpha=0.3)


def _headline(result: Mapping[str, Any]) -> Plot:
    models, dims = result["models"], result["dims"]
    fig, axes = _figure(len(dims), width=4.2 * len(dims), height=3.4)
    for ax, dim in zip(axes, dims):
        _, rows = headline_table(result, dim)
        labels = [r[0] for r in rows]
        series = {m: [result["results"][m]["dims"][dim]["metrics"].get(k) for k in labels] for m in models}
        _grouped_bars(ax, labels, series)
        ax.set_title(dim)
        ax.set_ylim(min(0.0, *[v for s in series.values() for v in s if v is not None]), 1.0)
    axes[0].legend(fontsize=7)
    return "Headline metrics per dimension (fractions; see tables for direction)", _png(fig)


def _ood(result: Mapping[str, Any]) -> Plot:
    models = result["models"]
    names = ["id"]
    for m in models:
        for k in result["results"][m]["dims"]["ood"]["details"]["shifts"]:
            if k not in names:
                names.append(k)
    series = {}
    for m in models:
        d = result["results"][m]["dims"]["ood"]
        series[m] = [d["metrics"]["id_acc"]] + [
            d["details"]["shifts"].get(k, {}).get("acc") for k in names[1:]
        ]
    fig, (ax,) = _figure(1, width=max(5.0, 0.7 * len(names) + 2), height=3.2)
    _grouped_bars(ax, names, series)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    return "OOD: accuracy in distribution and under each shift", _png(fig)


def _routing(result: Mapping[str, Any], model: str, dim: str) -> Mapping[str, Any]:
    return result["results"][model]["dims"][dim].get("routing") or {}


def _routing_js(result: Mapping[str, Any], moe: Sequence[str]) -> Plot:
    dims = result["dims"]
    fig, axes = _figure(len(dims), width=4.2 * len(dims), height=3.2)
    for ax, dim in zip(axes, dims):
        for m in moe:
            for stage, sh in _routing(result, m, dim).get("shift", {}).items():
                vals = list(sh["js_per_layer"].values())
                ax.plot(range(len(vals)), vals, marker=".", label=f"{m}: {stage}")
        ax.set_title(f"{dim}: JS vs reference")
        ax.set_xlabel("MoE layer")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    axes[0].set_ylabel("JS divergence (bits)")
    caption = "Routing drift: per-layer JS divergence of expert histograms vs each dimension's reference (clean) inputs"
    return caption, _png(fig)


def _routing_load(result: Mapping[str, Any], moe: Sequence[str]) -> Plot:
    dims = result["dims"]
    fig, axes = _figure(len(dims), width=4.2 * len(dims), height=3.2)
    for ax, dim in zip(axes, dims):
        stages: list[str] = []
        for m in moe:
            stages += [s for s in _routing(result, m, dim).get("stages", {}) if s not in stages]
        series = {
            m: [(_routing(result, m, dim).get("stages", {}).get(s) or {}).get("load") for s in stages]
            for m in moe
        }
        _grouped_bars(ax, stages, series)
        ax.set_title(f"{dim}: load per stage")
    axes[0].set_ylabel("true experts / token")
    axes[0].legend(fontsize=7)
    return "Load (true experts per token) per stage, MoE models", _png(fig)


def render_plots(result: Mapping[str, Any]) -> dict[str, Plot]:
    """{file name: (caption, PNG bytes)}: headline metrics, OOD accuracy per shift, routing drift."""
    plots = {"headline.png": _headline(result)}
    if "ood" in result["dims"]:
        plots["ood.png"] = _ood(result)
    moe = [m for m in result["models"] if result["results"][m].get("is_moe")]
    if moe:
        plots["routing_js.png"] = _routing_js(result, moe)
        plots["routing_load.png"] = _routing_load(result, moe)
    return plots
