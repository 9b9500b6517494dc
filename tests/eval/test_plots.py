"""The shared plot helpers: grouped interval bars and the panel layout (reference: positions and error-bar
ends computed by hand)."""

from __future__ import annotations

import math

import pytest

from adamoe.eval.plots import interval_bars, new_figure, panel_figure, png_bytes


def test_interval_bars_centre_each_series_and_clip_an_interval_that_misses_its_value() -> None:
    fig, ax = new_figure((4, 3))
    series = {"a": [(0.5, 0.4, 0.7), None], "b": [(0.3, 0.35, 0.5), (0.2, 0.1, 0.3)]}
    interval_bars(ax, ["x", "y"], series, ylabel="acc")
    _, a, b_errs, b = ax.containers  # per series: its error bars, then its bars
    assert [p.get_x() + p.get_width() / 2 for p in a] == pytest.approx([-0.2, 0.8])
    assert [p.get_x() + p.get_width() / 2 for p in b] == pytest.approx([0.2, 1.2])
    assert a[0].get_height() == 0.5 and math.isnan(a[1].get_height())
    (segments,) = [c.get_segments() for c in b_errs.lines[2]]
    ends = [(seg[0][1], seg[1][1]) for seg in segments]
    assert ends == pytest.approx([(0.3, 0.5), (0.1, 0.3)])  # 0.3 [0.35, 0.5]: the lower end clipped at 0.3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y"] and ax.get_ylabel() == "acc"
    assert png_bytes(fig).startswith(b"\x89PNG")


def test_panel_figure_hides_unused_axes_and_puts_the_legend_outside() -> None:
    def draw(ax, panel: str) -> None:
        ax.plot([0, 1], [0, 1], label=panel)

    fig = panel_figure(["p", "q", "r"], draw, size=(3, 2), ncols=2)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 4 and len(shown) == 3
    assert [ax.get_legend() is not None for ax in shown] == [False, False, True]  # the last panel only
    x0, _ = shown[-1].get_legend().get_bbox_to_anchor().transformed(shown[-1].transAxes.inverted()).p0
    assert x0 > 1.0
    every = panel_figure(["p", "q"], draw, size=(3, 2), every_legend=True)
    assert all(ax.get_legend() is not None for ax in every.axes)
