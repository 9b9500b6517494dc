"""Plots: at most MAX_LINES lines per panel, panels never mix dimensions, legends outside the axes."""

from __future__ import annotations

from adamoe.rbench.report.plots import MAX_LINES, headline_figure, js_figure, render_plots


def _result(n_stages: int) -> dict:
    shift = {
        f"s{i}": {"js_per_layer": {"l0": 0.01 * i, "l1": 0.02}, "noise_floor_p95": 0.05}
        for i in range(n_stages)
    }
    routing = {"clean": "id", "stages": {"id": {"load": 2.0}}, "shift": shift}
    dims = {
        "ood": {"metrics": {"id_acc": 0.5, "gap_mean": 0.1}, "routing": routing, "details": {"shifts": {}}},
        "adversarial": {
            "metrics": {"clean_acc": 0.4},
            "routing": {**routing, "shift": {"char": shift["s0"]}},
        },
    }
    return {
        "models": ["moe"],
        "dims": ["ood", "adversarial"],
        "results": {"moe": {"is_moe": True, "dims": dims}},
    }


def test_routing_drift_panels_hold_at_most_max_lines_and_one_dimension_each() -> None:
    fig = js_figure(_result(12), ["moe"])
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 3  # ood: 12 lines -> 8 + 4; adversarial: 1
    for ax in panels:
        assert len(ax.get_lines()) <= MAX_LINES
        assert ax.get_title().count(":") == 1  # "<one dimension>: JS vs reference"
        x0, _ = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted()).p0
        assert x0 > 1.0  # the legend starts right of the axes: it covers no data


def test_headline_plot_keeps_higher_and_lower_is_better_apart() -> None:
    up, down = headline_figure(_result(2)).axes
    assert [t.get_text() for t in up.get_xticklabels()] == ["ood.id_acc", "adversarial.clean_acc"]
    assert [t.get_text() for t in down.get_xticklabels()] == ["ood.gap_mean"]
    plots = render_plots(_result(2))
    assert set(plots) == {"headline.png", "ood.png", "routing_js.png"}
    assert all(png.startswith(b"\x89PNG") for _, png in plots.values())


def test_an_interval_that_misses_its_point_value_still_plots() -> None:
    result = _result(1)
    result["results"]["moe"]["dims"]["ood"]["estimates"] = {
        "gap_mean": {"value": 0.3, "low": 0.35, "high": 0.5}
    }
    assert render_plots(result)["headline.png"][1].startswith(b"\x89PNG")
