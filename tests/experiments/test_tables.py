"""The paper-style tables from per-item records: hand recomputations of every number, planted differences."""

from __future__ import annotations

import numpy as np
import pytest

from adamoe.data.examples import MCExample
from adamoe.eval.records import MCRecord
from adamoe.eval.significance import bootstrap_ci, holm
from adamoe.experiments.render import paired_caption, plot_acc_vs_load, plot_accuracy, report_tables
from adamoe.experiments.tables import (
    TaskRun,
    acc_matrix,
    accuracy_rows,
    gold_logprob,
    layer_group,
    layer_loads,
    paired_rows,
    pooled,
    stats_rng,
)


def _run(task: str, credit: list[float], *, choices: int, layers: dict | None = None) -> TaskRun:
    ids = tuple(f"{task}-{i}" for i in range(len(credit)))
    return TaskRun(
        task=task, ids=ids, credit=tuple(credit), num_choices=(choices,) * len(credit), layers=layers or {}
    )


def _layers(loads: dict[str, float], tokens: int) -> dict:
    return {
        n: {"tokens": tokens, "true_slots": x * tokens, "sharpness": [1.0, 0.0, 0.0, 0.0]}
        for n, x in loads.items()
    }


def _runs(seed: int = 0) -> dict:
    """3 seeds x 2 variants x 2 tasks (20 items of 2 choices, 10 items of 4) with random credit."""
    rng = np.random.default_rng(seed)
    runs = {}
    for variant, p in (("top2", 0.5), ("m5k4", 0.6)):
        runs[variant] = []
        for s in range(3):
            names = (
                "model.layers.0.self_attn.q_proj",
                "model.layers.0.mlp.up_proj",
                "model.layers.1.mlp.up_proj",
            )
            loads = {n: 2.0 - 0.1 * i - (0.3 * s if variant == "m5k4" else 0) for i, n in enumerate(names)}
            runs[variant].append(
                {
                    "a": _run(
                        "a", list((rng.random(20) < p).astype(float)), choices=2, layers=_layers(loads, 100)
                    ),
                    "b": _run(
                        "b", list((rng.random(10) < p).astype(float)), choices=4, layers=_layers(loads, 300)
                    ),
                }
            )
    return runs


def test_accuracy_cells_equal_a_hand_recomputation_from_the_records():
    runs = _runs()
    rows = {(r["model"], r["task"]): r for r in accuracy_rows(runs, baseline_k=2, stats_seed=3, n_boot=500)}
    for variant in runs:
        for task, n, chance in (("a", 20, 0.5), ("b", 10, 0.25)):
            row = rows[(variant, task)]
            total = sum(c for seed_runs in runs[variant] for c in seed_runs[task].credit)
            assert row["acc"] == pytest.approx(total / (3 * n))
            assert (row["n"], row["seeds"], row["chance"]) == (n, 3, pytest.approx(chance))
            matrix = np.array([[c for c in sr[task].credit] for sr in runs[variant]])
            ci = bootstrap_ci(matrix, rng=stats_rng(3, "acc", variant, task), n_boot=500, chance=chance)
            assert (row["acc_ci"]["low"], row["acc_ci"]["high"]) == (ci.low, ci.high)
            loads = [
                np.mean([v["true_slots"] / v["tokens"] for v in sr[task].layers.values()])
                for sr in runs[variant]
            ]
            assert row["load"] == pytest.approx(np.mean(loads))
            assert row["expert_flops_pct"] == pytest.approx(100 * np.mean(loads) / 2)


def test_average_row_is_the_mean_of_task_means_with_a_weighted_pooled_interval():
    runs = _runs()
    rows = {(r["model"], r["task"]): r for r in accuracy_rows(runs, baseline_k=2, n_boot=500)}
    for variant in runs:
        avg = rows[(variant, "average")]
        assert avg["acc"] == pytest.approx((rows[(variant, "a")]["acc"] + rows[(variant, "b")]["acc"]) / 2)
        assert avg["n"] == 30 and avg["acc_ci"]["low"] <= avg["acc"] <= avg["acc_ci"]["high"]
        assert avg["chance"] == pytest.approx((0.5 + 0.25) / 2)


def _planted(diff_a: int, diff_b: int) -> dict:
    """top2 gets 20 of 40 items of task a right in every seed; ada gets ``diff_a`` more (or fewer)."""
    runs = {"top2": [], "ada": []}
    for _ in range(3):
        base = [1.0] * 20 + [0.0] * 20
        ada_a = [1.0] * (20 + diff_a) + [0.0] * (20 - diff_a)
        ada_b = [1.0] * (20 + diff_b) + [0.0] * (20 - diff_b)
        runs["top2"].append({"a": _run("a", base, choices=2), "b": _run("b", base, choices=2)})
        runs["ada"].append({"a": _run("a", ada_a, choices=2), "b": _run("b", ada_b, choices=2)})
    return runs


@pytest.mark.parametrize("sign", [1, -1])
def test_paired_test_finds_a_planted_difference_with_its_sign(sign):
    rows = {
        r["task"]: r for r in paired_rows(_planted(12 * sign, 0), baseline="top2", n_boot=500, n_perm=2000)
    }
    assert rows["a"]["diff"]["value"] == pytest.approx(sign * 12 / 40)
    assert np.sign(rows["a"]["diff"]["low"]) == np.sign(rows["a"]["diff"]["high"]) == sign
    assert rows["a"]["p"] < 0.01 and rows["a"]["significant"]
    assert rows["b"]["diff"]["value"] == 0 and rows["b"]["p"] == 1.0 and not rows["b"]["significant"]
    assert rows["average"]["diff"]["value"] == pytest.approx(sign * 6 / 40)
    # Holm over the per-task family; the average is its own family (one test: unadjusted)
    assert [rows["a"]["p_holm"], rows["b"]["p_holm"]] == holm([rows["a"]["p"], rows["b"]["p"]])
    assert rows["average"]["p_holm"] == rows["average"]["p"]


def test_references_are_excluded_from_the_paired_tests():
    runs = {"base": _planted(0, 0)["top2"], **_planted(3, 0)}
    models = {r["model"] for r in paired_rows(runs, baseline="top2", exclude=["base"], n_boot=200)}
    assert models == {"ada"}
    with pytest.raises(ValueError, match="baseline: expected one of"):
        paired_rows(runs, baseline="top1")


def test_items_must_pair_across_seeds():
    runs = _planted(0, 0)
    runs["ada"][1]["a"] = TaskRun(task="a", ids=("x",) * 40, credit=(0.0,) * 40, num_choices=(2,) * 40)
    with pytest.raises(ValueError, match="different items"):
        acc_matrix(runs, "ada", "a")


def test_load_per_layer_groups_sources_by_decoder_layer_and_weights_tasks_by_tokens():
    runs = _runs()
    loads = layer_loads(runs, "m5k4")
    assert set(loads) == {"0", "1"}
    # layer 0 = mean of its two sources; each source's load is the same in both tasks, so token
    # weighting leaves it; seeds shift every source by -0.3 s
    expect0 = np.mean([np.mean([2.0 - 0.3 * s, 1.9 - 0.3 * s]) for s in range(3)])
    assert loads["0"] == pytest.approx(expect0)
    assert loads["1"] == pytest.approx(np.mean([1.8 - 0.3 * s for s in range(3)]))
    assert layer_group("model.layers.12.mlp.gate") == "12" and layer_group("router") == "router"


def test_token_weighting_across_tasks():
    runs = {
        "v": [
            {
                "a": _run("a", [1.0], choices=2, layers=_layers({"layers.0.x": 1.0}, 100)),
                "b": _run("b", [1.0], choices=2, layers=_layers({"layers.0.x": 2.0}, 300)),
            }
        ]
    }
    assert layer_loads(runs, "v")["0"] == pytest.approx((100 * 1.0 + 300 * 2.0) / 400)


def test_task_run_from_scores_uses_the_tasks_credit_and_round_trips():
    ex = [
        MCExample(id="i0", context="q", choices=["a", "b", "c"], label=1, task="t", scores=(0.0, 1.0, 1.0)),
        MCExample(id="i1", context="q", choices=["a", "b"], label=0, task="t"),
    ]
    recs = [
        MCRecord.build(ex[0], [-3.0, -2.0, -1.0], [False] * 3),
        MCRecord.build(ex[1], [-1.0, -2.0], [False] * 2),
    ]
    routing = {
        "layers": {
            "layers.0.g": {"tokens": 10, "load": 1.5, "sharpness": {"1": 0.5, "2": 0.5, "3": 0, "4+": 0}}
        }
    }
    run = TaskRun.from_scores("t", ex, recs, routing)
    assert run.credit == (1.0, 1.0)  # item 0 picks choice 2, another gold
    # by hand: gold share of exp(ll) among the choices (item 0: golds 1 and 2)
    e = np.exp
    assert run.gold_logprob == pytest.approx(
        (np.log((e(-2) + e(-1)) / (e(-3) + e(-2) + e(-1))), np.log(e(-1) / (e(-1) + e(-2))))
    )
    assert run.credit_norm == tuple(float(x.credit(r.pred_norm)) for x, r in zip(ex, recs))
    assert run.num_choices == (3, 2) and run.load == pytest.approx(1.5)
    assert TaskRun.from_dict(run.to_dict()) == run
    with pytest.raises(ValueError, match="one record per example"):
        TaskRun.from_scores("t", ex[::-1], recs, routing)


def test_tables_and_plots_render(tmp_path):
    runs = _runs()
    rows = accuracy_rows(runs, baseline_k=2, n_boot=200)
    blocks = report_tables(
        rows, paired_rows(runs, baseline="top2", n_boot=200), {v: layer_loads(runs, v) for v in runs}
    )
    assert len(blocks) == 3
    assert plot_accuracy(rows, tmp_path / "a.png").stat().st_size > 0
    assert plot_acc_vs_load(rows, tmp_path / "b.png").stat().st_size > 0


def test_gold_logprob_is_stable_for_very_negative_loglikelihoods():
    assert gold_logprob([-1000.0, -1001.0], [0]) == pytest.approx(-np.log1p(np.exp(-1.0)))
    assert gold_logprob([-5.0, -5.0, -5.0], [1]) == pytest.approx(np.log(1 / 3))


def test_pooled_metric_is_the_mean_of_task_means_and_old_runs_without_it_are_refused():
    runs = _runs()
    for seed_runs in runs["top2"]:
        for t, r in seed_runs.items():
            seed_runs[t] = TaskRun.from_dict(
                {**r.to_dict(), "gold_logprob": [-float(i) for i in range(len(r.ids))]}
            )
    x = pooled(runs, "top2", metric="gold_logprob")
    assert x.mean(axis=1) == pytest.approx([np.mean([-np.mean(range(20)), -np.mean(range(10))])] * 3)
    with pytest.raises(ValueError, match="no per-item 'gold_logprob'"):
        pooled(runs, "m5k4", metric="gold_logprob")


def test_paired_caption_counts_the_holm_families():
    runs = _runs()
    text = paired_caption(paired_rows(runs, baseline="top2", n_boot=200))
    assert "conditional on the trained models" in text
    assert "Holm over the 2 per-task tests (1 variants x 2 tasks)" in text and "over the 1 averages" in text
