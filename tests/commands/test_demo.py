"""``adamoe demo`` as a verb: its config keys in --help, bad settings refused before any work, and the
``--quick`` report holding every number with its n, interval, chance level and paired test."""

from __future__ import annotations

import json
from math import comb

import numpy as np
import pytest

from adamoe.cli import main
from adamoe.experiments.demo import DemoConfig
from tests.experiments.fixtures import one_thread, paper_tasks  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_help_lists_every_config_key(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    keys = DemoConfig.keys()
    assert keys and all(key in out for key in keys)


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ("baseline_k=9", "baseline_k: expected <= num_experts=8"),
        ("gate2_init=warm", "gate2_init"),
        ("moe=split", "moe"),
    ],
)
def test_bad_setting_exits_2_and_writes_no_run_directory(tmp_path, capsys, setting, needle):
    assert main(["demo", "--quick", "--set", setting, "--runs-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert list(tmp_path.iterdir()) == []


def _mcnemar_exact(a: list[float], b: list[float]) -> float:
    """Two-sided exact McNemar by hand: binomial(n01 + n10, 1/2) tail at the smaller count, doubled."""
    n01 = sum(1 for x, y in zip(a, b) if x == 1 and y == 0)
    n10 = sum(1 for x, y in zip(a, b) if x == 0 and y == 1)
    n = n01 + n10
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(n01, n10) + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize("build", ["moefy", "upcycle"])
def test_quick_report_has_n_ci_chance_and_paired_tests(tmp_path, capsys, paper_tasks, build):  # noqa: F811
    run = tmp_path / "demo"
    tasks = ",".join(paper_tasks)
    assert (
        main(["demo", "--quick", "--set", f"moe={build}", "--set", f"tasks={tasks}", "--run-dir", str(run)])
        == 0
    )
    metrics = json.loads((run / "metrics.json").read_text())
    rows = {(r["model"], r["task"]): r for r in metrics["table"]}
    models, cells = {"dense", "top-4", "AdaMoE-m8k5"}, [*paper_tasks, "average"]
    assert set(rows) == {(m, t) for m in models for t in cells}
    for r in rows.values():
        ci = r["acc_ci"]
        assert r["n"] > 0 and ci["low"] <= r["acc"] <= ci["high"] and 0 < r["chance"] < 1
    assert rows[("top-4", "average")]["load"] == pytest.approx(4.0)
    assert 0.0 < rows[("AdaMoE-m8k5", "average")]["load"] < 5.0
    assert rows[("top-4", "average")]["model_flops_pct"] == pytest.approx(100.0)
    records = {v: per_seed[0] for v, per_seed in metrics["records"].items()}  # the one seed
    assert metrics["seeds"] == [0] and all(len(s) == 1 for s in metrics["records"].values())
    for task in paper_tasks:  # chance and accuracy recomputed from the saved per-item records
        rec = records["top-4"][task]
        assert rows[("top-4", task)]["chance"] == pytest.approx(np.mean([1 / c for c in rec["num_choices"]]))
        assert rows[("top-4", task)]["acc"] == pytest.approx(np.mean(rec["credit"]))
    paired = {r["task"]: r for r in metrics["paired"]}
    assert set(paired) == set(cells) and {r["model"] for r in metrics["paired"]} == {"AdaMoE-m8k5"}
    for task, r in paired.items():
        assert r["diff"]["low"] <= r["diff"]["value"] <= r["diff"]["high"] and 0 <= r["p"] <= 1
        if task != "average":
            a, b = records["AdaMoE-m8k5"][task]["credit"], records["top-4"][task]["credit"]
            assert r["p"] == pytest.approx(_mcnemar_exact(a, b))
            assert r["diff"]["value"] == pytest.approx(np.mean(a) - np.mean(b))
    assert len(metrics["findings"]) == len(paired)
    out = capsys.readouterr().out
    assert all(f in out for f in metrics["findings"])
    for png in ("sharpness_top-4.png", "sharpness_AdaMoE-m8k5.png", "compute_dial.png", "load_per_layer.png"):
        assert (run / png).stat().st_size > 0
    assert (build == "moefy") == ("moefied" in metrics["title"])
    report = (run / "report.md").read_text()
    assert (
        metrics["command"]
        == f"adamoe demo --set moe={build} --set tasks={tasks} --seed 0 --quick --run-dir {run}"
    )
    assert f"Command: {metrics['command']}" in report and "Accuracy per seed" in report
    assert {r["seeds"] for r in metrics["seed_paired"]} == {
        1
    }  # one seed: the seed-level p is 1 by construction
