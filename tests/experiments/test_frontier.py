"""The quality-compute frontier against hand computations: linear interpolation, gaps of planted
points, the pooled held-out NLL, and a bootstrap interval that is exactly 0 for an arm equal to the line."""

from __future__ import annotations

import numpy as np
import pytest

from adamoe.experiments.frontier import ArmData, frontier_gaps, frontier_rows, interp_frontier, plot_frontier


def test_interp_frontier_is_piecewise_linear_inside_its_range():
    assert interp_frontier([2.0, 1.0, 4.0], [20.0, 10.0, 10.0], 1.5) == pytest.approx(15.0)
    assert interp_frontier([2.0, 1.0, 4.0], [20.0, 10.0, 10.0], 3.0) == pytest.approx(15.0)
    assert np.isnan(interp_frontier([1.0, 2.0], [0.0, 1.0], 2.5))
    assert np.isnan(interp_frontier([1.0], [0.0], 1.1)) and interp_frontier([1.0], [0.5], 1.0) == 0.5


def _arm(
    flops: list[float], acc: np.ndarray, nll: np.ndarray | None = None, tokens: np.ndarray | None = None
) -> ArmData:
    items = {"acc": acc, "acc_norm": acc, "gold_logprob": np.log(np.clip(acc, 0.1, 1.0))}
    return ArmData(flops=np.asarray(flops, dtype=float), items=items, nll_sum=nll, tokens=tokens)


def _data(rng: np.random.Generator) -> dict[str, ArmData]:
    """3 seeds x 50 items, 4 texts; top1 (FLOPs 100) and top2 (200) define the line."""
    tokens = np.tile([10.0, 20.0, 30.0, 40.0], (3, 1))
    top1 = _arm([100, 100, 100], (rng.random((3, 50)) < 0.4).astype(float), 3.0 * tokens, tokens)
    top2 = _arm([200, 200, 200], (rng.random((3, 50)) < 0.6).astype(float), 2.0 * tokens, tokens)
    # on the line at FLOPs 150: the mean of the two arms, item by item and seed by seed
    mid = ArmData(
        flops=np.full(3, 150.0),
        items={m: (top1.items[m] + top2.items[m]) / 2 for m in top1.items},
        nll_sum=2.5 * tokens,
        tokens=tokens,
    )
    nll = np.array([[30.0, 40.0, 60.0, 80.0]] * 3)  # per-token NLL = 210 / 100 = 2.1
    ada = _arm([140, 150, 160], (rng.random((3, 50)) < 0.7).astype(float), nll, tokens)
    return {"top1": top1, "top2": top2, "mid": mid, "ada": ada}


def _gaps_by_arm(data: dict[str, ArmData], *, n_boot: int) -> dict[tuple[str, str], dict]:
    """{(arm, metric): gap row} of the planted arms "mid" and "ada" against top1 -> top2."""
    rows = frontier_gaps(
        data, arms=["mid", "ada"], frontier=["top1", "top2"], rng=np.random.default_rng(1), n_boot=n_boot
    )
    return {(g["arm"], g["metric"]): g for g in rows}


def test_gaps_by_hand_and_an_arm_on_the_line_has_gap_zero():
    data = _data(np.random.default_rng(0))
    gaps = _gaps_by_arm(data, n_boot=300)
    for metric in ("nll", "acc", "acc_norm", "gold_logprob"):
        g = gaps[("mid", metric)]
        assert g["value"] == pytest.approx(0.0, abs=1e-12) and g["low"] == pytest.approx(0.0, abs=1e-9)
        assert g["high"] == pytest.approx(0.0, abs=1e-9) and g["inside"] == 1.0
    a1, a2, ad = (data[v].items["acc"].mean() for v in ("top1", "top2", "ada"))
    assert gaps[("ada", "acc")]["value"] == pytest.approx(ad - (a1 + (a2 - a1) * (150 - 100) / 100))
    assert gaps[("ada", "nll")]["value"] == pytest.approx(2.1 - 2.5)  # line: 3.0 -> 2.0 per token
    g = gaps[("ada", "acc")]
    assert g["low"] <= g["value"] <= g["high"] and 0.9 < g["inside"] <= 1.0  # seeds at 140..160 stay inside


def test_per_seed_gaps_use_each_seeds_own_points_by_hand():
    data = _data(np.random.default_rng(0))
    gaps = _gaps_by_arm(data, n_boot=20)
    assert gaps[("mid", "acc")]["per_seed"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
    acc = {v: data[v].items["acc"].mean(axis=1) for v in ("top1", "top2", "ada")}
    hand = [
        acc["ada"][s] - (acc["top1"][s] + (acc["top2"][s] - acc["top1"][s]) * (f - 100) / 100)
        for s, f in enumerate([140, 150, 160])
    ]
    g = gaps[("ada", "acc")]
    assert g["per_seed"] == pytest.approx(hand)
    half = 4.302652729911275 * np.std(hand, ddof=1) / np.sqrt(3)  # t_{2, 0.975}
    assert g["seed_ci"] == pytest.approx([np.mean(hand) - half, np.mean(hand) + half])
    # each seed at its own FLOPs (140, 150, 160) on the line 3.0 -> 2.0 per token over 100 -> 200
    assert gaps[("ada", "nll")]["per_seed"] == pytest.approx([2.1 - 2.6, 2.1 - 2.5, 2.1 - 2.4])


def test_an_arm_beyond_the_frontier_has_no_gap():
    data = _data(np.random.default_rng(0))
    data["far"] = _arm([300, 300, 300], data["top2"].items["acc"])
    (g, *_) = frontier_gaps(
        data, arms=["far"], frontier=["top1", "top2"], rng=np.random.default_rng(1), n_boot=50
    )
    assert np.isnan(g["value"]) and g["inside"] == 0.0 and np.isnan(g["low"])


def test_rows_and_plot(tmp_path):
    data = _data(np.random.default_rng(0))
    rows = frontier_rows(data, baseline="top2")
    assert [r["point"] for r in rows] == ["top1", "mid", "ada", "top2"]  # by FLOPs (ties: given order)
    by = {r["point"]: r for r in rows}
    assert by["top1"]["flops_pct"] == pytest.approx(50.0) and by["ada"]["nll"] == pytest.approx(2.1)
    dial = [{"acc": 0.5, "model_flops_per_token": 1.2e2}]
    assert plot_frontier(rows, tmp_path / "f.png", frontier=["top1", "top2"], dial=dial).stat().st_size > 0
