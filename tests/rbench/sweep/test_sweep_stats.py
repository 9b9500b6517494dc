"""The sweep's numbers: means over seeds and items, their intervals, MoE − dense, the rendered table.

References: per-item scores written by hand (a fake dimension that scores by model and seed), their
means computed by hand, and the interval of `bootstrap_ci` / `paired_difference` on hand-built arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from adamoe.eval.significance import bootstrap_ci, paired_difference
from adamoe.rbench.config import RBenchConfig
from adamoe.rbench.dimensions import DimensionResult
from adamoe.rbench.sweep import (
    DENSE_NA,
    SweepConfig,
    aligned_scores,
    prepare_sweep,
    run_sweep,
    summarise,
    sweep_table,
    write_sweep,
)
from adamoe.rbench.uncertainty import N_BOOT, item_scores, stream

pytestmark = pytest.mark.usefixtures("one_thread")

# hand-written per-item scores (items a..d) by (arm, seed); MoE seed 1 misses item d
SCORES = {
    ("moe", 0): {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0},
    ("moe", 1): {"a": 1.0, "b": 0.0, "c": 0.0},
    ("dense", 0): {"a": 0.0, "b": 1.0, "c": 0.0, "d": 0.0},
    ("dense", 1): {"a": 0.0, "b": 0.0, "c": 0.0, "d": 1.0},
}


def _run(arm: str, pid: str, seed: int) -> dict[str, Any]:
    s = SCORES[(arm, seed)]
    return {
        "arm": arm,
        "pid": pid,
        "seed": seed,
        "items": {"x.acc": item_scores(list(s), list(s.values()), chance=0.5)},
    }


def test_aligned_scores_keep_items_every_entry_scored() -> None:
    e = [{"ids": ["a", "b", "c"], "scores": [1, 2, 3]}, {"ids": ["c", "a"], "scores": [30, 10]}]
    ids, x = aligned_scores(e)
    assert ids == ["a", "c"] and x.tolist() == [[1.0, 3.0], [10.0, 30.0]]


def test_summary_means_intervals_and_paired_delta_match_hand_computation() -> None:
    recipes = [
        {"pid": "p00", "label": "baseline", "dense_pid": "p00", "dense_na": False},
        {"pid": "p01", "label": "aux_coef=0.1", "dense_pid": "p00", "dense_na": True},
    ]
    runs = [_run("moe", p, s) for p in ("p00", "p01") for s in (0, 1)] + [
        _run("dense", "p00", s) for s in (0, 1)
    ]
    out = summarise(recipes, runs, seed=3)
    assert out["metrics"] == ["x.acc"]
    base, aux = (r["cells"]["x.acc"] for r in out["rows"])

    # MoE: items a, b, c (d is missing in seed 1): (1+1+0 + 1+0+0) / 6
    assert base["moe"]["value"] == pytest.approx(3 / 6) and base["moe"]["n"] == 3
    hand = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    ref = bootstrap_ci(hand, rng=stream(3, "sweep", "ci", "moe", "p00", "x.acc"), n_boot=N_BOOT)
    assert (base["moe"]["low"], base["moe"]["high"]) == (ref.low, ref.high)
    assert base["moe"]["chance"] == 0.5
    # dense: all four items: (0+1+0+0 + 0+0+0+1) / 8
    assert base["dense"]["value"] == pytest.approx(2 / 8) and base["dense"]["n"] == 4
    # delta on a, b, c: MoE 3/6 minus dense (0+1+0 + 0+0+0)/6
    assert base["delta"]["value"] == pytest.approx(3 / 6 - 1 / 6) and base["delta"]["n"] == 3
    dense_abc = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    pref = paired_difference(hand, dense_abc, rng=stream(3, "sweep", "delta", "p00", "x.acc"), n_boot=N_BOOT)
    assert (base["delta"]["low"], base["delta"]["high"]) == (pref.low, pref.high)
    # an MoE-only recipe: no dense cell, its delta against the dense baseline's runs
    assert aux["dense"] == DENSE_NA and aux["delta"]["value"] == pytest.approx(2 / 6)


class FakeDim:
    """Scores items a..d from the hand table by the evaluator's model (arm) and seed in its name."""

    name = "x"

    def sizes(self, data: Any) -> dict[str, int]:
        return {"x": 4}

    def run(self, ev: Any, data: Any, *, seed: int) -> DimensionResult:
        arm = "moe" if ev.is_moe else "dense"
        run_seed = int(ev.name.rsplit("seed ", 1)[1].rstrip("]"))
        s = SCORES[(arm, run_seed)]
        items = {"acc": item_scores(list(s), list(s.values()), chance=0.5)}
        return DimensionResult(dimension="x", metrics={"acc": None}, items=items)


def test_a_sweep_on_a_fake_dimension_reports_the_hand_computed_table(tmp_path) -> None:
    suite = RBenchConfig.from_dict(
        {"limit": 2, "progress": False, "ood": {"id": "generated:product", "sets": []}}
    )
    sweep = SweepConfig.from_dict(
        {
            "model": "tiny-mixtral",
            "dense": "tiny-llama",
            "grid": {"dropout": [0.0, 0.1], "expert_dropout": [0.0, 0.2]},
            "train_data": ["nli"],
            "train_n": 2,
            "dims": ["ood"],
        }
    )
    plan = prepare_sweep(sweep, suite)
    plan.dimensions, plan.data = {"x": FakeDim()}, {"x": None}

    def no_training(model: Any, tokenizer: Any, pairs: Any, config: Any) -> Any:
        return None

    result = run_sweep(sweep, plan, run_dir=tmp_path, train_fn=no_training)
    assert len(result["runs"]) == 2 * (4 + 3)  # per seed: 4 MoE points, dense for all but expert_dropout
    headers, rows = sweep_table(result)
    assert headers[:5] == ["recipe", "x.acc ↑ MoE", "x.acc ↑ dense", "x.acc ↑ MoE − dense", "x.acc n"]
    assert [r[0] for r in rows] == ["no fine-tune", "baseline", "dropout=0.1", "expert_dropout=0.2"]
    assert all(r[1].startswith("50.0 [") and r[4] == "3" for r in rows)  # 3/6 over items a..c
    assert rows[1][2].startswith("25.0 [") and rows[1][3].startswith("33.3 [")
    assert rows[3][2] == DENSE_NA and rows[3][3].startswith("33.3 [")
    md = write_sweep(tmp_path, result)["sweep.md"].read_text()
    assert "| expert_dropout=0.2 | 50.0 [" in md and DENSE_NA in md
