"""The report's PNG plots, drawn on `matplotlib.figure.Figure` objects (no pyplot, no global backend).

Each plot is a function of the suite's result dict returning (caption, PNG bytes). Rules: metrics
where higher is better and where lower is better never share a panel; every bar carries its 95%
interval; a panel holds at most `MAX_LINES` lines (routing drift is split over several panels); legends
sit outside the axes so they never cover data. Every figure is laid out by `adamoe.eval.plots.panel_figure`
and its bars drawn by `adamoe.eval.plots.interval_bars`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from adamoe.eval.plots import Bar, interval_bars, panel_figure, png_bytes
from adamoe.rbench.dimensions.base import metric_direction
from adamoe.rbench.report.tables import keys_over_models, metric_names

__all__ = ["MAX_LINES", "headline_figure", "js_figure", "render_plots"]

Plot = tuple[str, bytes]
MAX_LINES = 8


def _bar(est: Any, fallback: Any = None) -> Bar:
    """(value, low, high) from an estimate mapping, or a bare value without interval."""
    if isinstance(est, Mapping) and est.get("value") is not None:
        v, low, high = (est.get(k) for k in ("value", "low", "high"))
        return float(v), float(v if low is None else low), float(v if high is None else high)
    if isinstance(fallback, (int, float)) and math.isfinite(fallback):
        return float(fallback), float(fallback), float(fallback)
    return None


def headline_figure(result: Mapping[str, Any]) -> Any:
    """Two panels: metrics where higher is better, and where lower is better (never mixed)."""

    def draw(ax: Any, panel: tuple[str, str]) -> None:
        keys = [
            (d, k) for d in result["dims"] for k in metric_names(result, d) if metric_direction(k) == panel[0]
        ]
        series = {}
        for m in result["models"]:
            dims = result["results"][m]["dims"]
            series[m] = [
                _bar(dims[d].get("estimates", {}).get(k), dims[d]["metrics"].get(k)) for d, k in keys
            ]
        interval_bars(
            ax, [f"{d}.{k}" for d, k in keys], series, title=f"{panel[1]} (95% CI)", ylabel="value (fraction)"
        )

    return panel_figure([("↑", "higher is better"), ("↓", "lower is better")], draw, size=(6.5, 4.0))


def _ood(result: Mapping[str, Any]) -> Plot:
    names = list(dict.fromkeys(["id", *keys_over_models(result, "ood", "details", "shifts")]))
    series = {}
    for m in result["models"]:
        d = result["results"][m]["dims"]["ood"]
        shifts = d["details"]["shifts"]
        series[m] = [_bar(d.get("estimates", {}).get("id_acc"), d["metrics"].get("id_acc"))]
        series[m] += [_bar((shifts.get(k) or {}).get("acc")) for k in names[1:]]

    def draw(ax: Any, _: Any) -> None:
        interval_bars(ax, names, series, ylabel="accuracy (higher is better)", ylim=(0, 1))

    fig = panel_figure([None], draw, size=(max(6.0, 0.8 * len(names) + 3), 3.6))
    return "OOD: accuracy in distribution and on each shifted set (95% CI)", png_bytes(fig)


def _routing(result: Mapping[str, Any], model: str, dim: str) -> Mapping[str, Any]:
    return result["results"][model]["dims"][dim].get("routing") or {}


def js_figure(result: Mapping[str, Any], moe: Sequence[str]) -> Any:
    """The routing-drift `Figure`: one panel per dimension (split further past `MAX_LINES` lines)."""
    chunks = []  # panels never mix dimensions: each has its own reference and floor
    for dim in result["dims"]:
        lines = [
            (f"{m}: {stage}", list(sh["js_per_layer"].values()))
            for m in moe
            for stage, sh in _routing(result, m, dim).get("shift", {}).items()
        ]
        chunks += [(dim, lines[i : i + MAX_LINES]) for i in range(0, len(lines), MAX_LINES)]

    def draw(ax: Any, chunk: tuple[str, list[tuple[str, list[float]]]]) -> None:
        for label, vals in chunk[1]:
            ax.plot(range(len(vals)), vals, marker=".", label=label)
        ax.set(title=f"{chunk[0]}: JS vs reference", xlabel="MoE layer", ylabel="JS divergence (bits)")

    return panel_figure(chunks or [("", [])], draw, size=(7.5, 3.2), every_legend=True)


def render_plots(result: Mapping[str, Any]) -> dict[str, Plot]:
    """{file name: (caption, PNG bytes)}: headline metrics, OOD accuracy per set, routing drift (load per
    stage is in the routing tables)."""
    caption = "Headline metrics with 95% intervals: higher-is-better and lower-is-better apart"
    plots = {"headline.png": (caption, png_bytes(headline_figure(result)))}
    if "ood" in result["dims"]:
        plots["ood.png"] = _ood(result)
    moe = [m for m in result["models"] if result["results"][m].get("is_moe")]
    if moe:
        caption = (
            "Routing drift: per-layer JS divergence of expert histograms vs each dimension's reference inputs, "
            f"at most {MAX_LINES} lines per panel"
        )
        plots["routing_js.png"] = (caption, png_bytes(js_figure(result, moe)))
    return plots
