"""The report's PNG plots, drawn on `matplotlib.figure.Figure` objects (no pyplot, no global backend).

Each plot is a function of the suite's result dict returning (caption, PNG bytes). Rules: metrics
where higher is better and where lower is better never share a panel; every bar carries its 95%
interval; a panel holds at most `MAX_LINES` lines (routing drift is split over several panels); legends
sit outside the axes so they never cover data.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from adamoe.rbench.dimensions.base import metric_direction
from adamoe.rbench.report.tables import metric_names

__all__ = ["MAX_LINES", "headline_figure", "js_figure", "render_plots"]

Plot = tuple[str, bytes]
MAX_LINES = 8
Bar = tuple[float, float, float] | None
"""(value, low, high) of one bar, or None for no value."""


def _figure(nrows: int, ncols: int, *, width: float, height: float) -> tuple[Any, list[Any]]:
    """A new `Figure` (its own canvas, no pyplot state) with a grid of axes, flattened row-major."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, list(fig.subplots(nrows, ncols, squeeze=False).ravel())


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _legend_outside(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _bar(est: Any, fallback: Any = None) -> Bar:
    """(value, low, high) from an estimate mapping, or a bare value without interval."""
    if isinstance(est, Mapping) and est.get("value") is not None:
        low, high = est.get("low"), est.get("high")
        v = float(est["value"])
        return v, float(low if low is not None else v), float(high if high is not None else v)
    if isinstance(fallback, (int, float)) and math.isfinite(fallback):
        return float(fallback), float(fallback), float(fallback)
    return None


def _grouped_bars(ax: Any, labels: Sequence[str], series: Mapping[str, Sequence[Bar]]) -> None:
    """Bars per label and series with their 95% intervals as error bars."""
    n = max(len(series), 1)
    width = 0.8 / n
    for j, (name, bars) in enumerate(series.items()):
        xs = [i + (j - (n - 1) / 2) * width for i in range(len(labels))]
        vals = [b[0] if b else float("nan") for b in bars]
        # a percentile interval need not contain its point value (skewed or tiny samples): clip at 0
        err = [
            [max(b[0] - b[1], 0.0) if b else 0.0 for b in bars],
            [max(b[2] - b[0], 0.0) if b else 0.0 for b in bars],
        ]
        ax.bar(xs, vals, width=width, label=name, yerr=err, capsize=2, error_kw={"elinewidth": 0.8})
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    ax.grid(axis="y", alpha=0.3)


def _metric_bars(result: Mapping[str, Any], direction: str) -> tuple[list[str], dict[str, list[Bar]]]:
    labels, keys = [], []
    for dim in result["dims"]:
        for name in metric_names(result, dim):
            if metric_direction(name) == direction:
                labels.append(f"{dim}.{name}")
                keys.append((dim, name))
    series = {}
    for m in result["models"]:
        dims = result["results"][m]["dims"]
        series[m] = [_bar(dims[d].get("estimates", {}).get(k), dims[d]["metrics"].get(k)) for d, k in keys]
    return labels, series


def headline_figure(result: Mapping[str, Any]) -> Any:
    """Two panels: metrics where higher is better, and where lower is better (never mixed)."""
    panels = [("↑", "higher is better"), ("↓", "lower is better")]
    fig, axes = _figure(1, 2, width=13.0, height=4.0)
    for ax, (direction, title) in zip(axes, panels):
        labels, series = _metric_bars(result, direction)
        if labels:
            _grouped_bars(ax, labels, series)
        ax.set_title(f"{title} (95% CI)")
        ax.set_ylabel("value (fraction)")
    _legend_outside(axes[1])
    return fig


def _headline(result: Mapping[str, Any]) -> Plot:
    caption = "Headline metrics with 95% intervals: higher-is-better and lower-is-better apart"
    return caption, _png(headline_figure(result))


def _ood(result: Mapping[str, Any]) -> Plot:
    names = ["id"]
    for m in result["models"]:
        names += [k for k in result["results"][m]["dims"]["ood"]["details"]["shifts"] if k not in names]
    series = {}
    for m in result["models"]:
        d = result["results"][m]["dims"]["ood"]
        shifts = d["details"]["shifts"]
        series[m] = [_bar(d.get("estimates", {}).get("id_acc"), d["metrics"].get("id_acc"))] + [
            _bar((shifts.get(k) or {}).get("acc")) for k in names[1:]
        ]
    fig, (ax,) = _figure(1, 1, width=max(6.0, 0.8 * len(names) + 3), height=3.6)
    _grouped_bars(ax, names, series)
    ax.set_ylabel("accuracy (higher is better)")
    ax.set_ylim(0, 1)
    _legend_outside(ax)
    return "OOD: accuracy in distribution and on each shifted set (95% CI)", _png(fig)


def _routing(result: Mapping[str, Any], model: str, dim: str) -> Mapping[str, Any]:
    return result["results"][model]["dims"][dim].get("routing") or {}


def _js_lines(
    result: Mapping[str, Any], moe: Sequence[str]
) -> list[tuple[str, str, list[float], float | None]]:
    """(dim, label, per-layer JS, floor p95) for every MoE model and shifted stage."""
    out = []
    for dim in result["dims"]:
        for m in moe:
            for stage, sh in _routing(result, m, dim).get("shift", {}).items():
                out.append((dim, f"{m}: {stage}", list(sh["js_per_layer"].values()), None))
    return out


def js_figure(result: Mapping[str, Any], moe: Sequence[str]) -> Any:
    """The routing-drift `Figure`: one panel per dimension (split further past `MAX_LINES` lines)."""
    lines = _js_lines(result, moe)
    per_panel = MAX_LINES - 1  # one line of each panel is the noise floor
    chunks = []  # panels never mix dimensions: each has its own reference and floor
    for dim in result["dims"]:
        mine = [line for line in lines if line[0] == dim]
        chunks += [mine[i : i + per_panel] for i in range(0, len(mine), per_panel)]
    chunks = chunks or [[]]
    ncols = min(2, len(chunks))
    nrows = math.ceil(len(chunks) / ncols)
    fig, axes = _figure(nrows, ncols, width=7.5 * ncols, height=3.2 * nrows)
    for ax, chunk in zip(axes, chunks):
        for _, label, vals, _ in chunk:
            ax.plot(range(len(vals)), vals, marker=".", label=label)
        floors = [f for *_, f in chunk if f is not None]
        if floors:
            ax.axhline(
                max(floors), color="grey", linestyle="--", linewidth=0.8, label="noise floor p95 (max)"
            )
        ax.set_title(", ".join(dict.fromkeys(d for d, *_ in chunk)) + ": JS vs reference")
        ax.set_xlabel("MoE layer")
        ax.set_ylabel("JS divergence (bits)")
        ax.grid(alpha=0.3)
        _legend_outside(ax)
    for ax in axes[len(chunks) :]:
        ax.set_visible(False)
    return fig


def _routing_js(result: Mapping[str, Any], moe: Sequence[str]) -> Plot:
    caption = (
        "Routing drift: per-layer JS divergence of expert histograms vs each dimension's reference inputs, "
        f"at most {MAX_LINES} lines per panel; dashed: split-half noise floor (95th percentile)"
    )
    return caption, _png(js_figure(result, moe))


def _routing_load(result: Mapping[str, Any], moe: Sequence[str]) -> Plot:
    dims = result["dims"]
    fig, axes = _figure(1, len(dims), width=4.2 * len(dims) + 2, height=3.4)
    for ax, dim in zip(axes, dims):
        stages: list[str] = []
        for m in moe:
            stages += [s for s in _routing(result, m, dim).get("stages", {}) if s not in stages]
        series = {
            m: [
                _bar(None, (_routing(result, m, dim).get("stages", {}).get(s) or {}).get("load"))
                for s in stages
            ]
            for m in moe
        }
        _grouped_bars(ax, stages, series)
        ax.set_title(f"{dim}: load per stage")
    axes[0].set_ylabel("true experts / token")
    _legend_outside(axes[-1])
    return "Load (true experts per token) per stage, MoE models", _png(fig)


def render_plots(result: Mapping[str, Any]) -> dict[str, Plot]:
    """{file name: (caption, PNG bytes)}: headline metrics, OOD accuracy per set, routing drift and load."""
    plots = {"headline.png": _headline(result)}
    if "ood" in result["dims"]:
        plots["ood.png"] = _ood(result)
    moe = [m for m in result["models"] if result["results"][m].get("is_moe")]
    if moe:
        plots["routing_js.png"] = _routing_js(result, moe)
        plots["routing_load.png"] = _routing_load(result, moe)
    return plots
