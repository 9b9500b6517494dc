"""``adamoe reproduce molora|moe``: typed config, resolved config printed, report in the run dir, errors."""

from __future__ import annotations

import argparse
import json

import pytest

from adamoe.cli import main
from adamoe.commands.reproduce import build_config
from tests.experiments.fixtures import one_thread, paper_tasks  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")


def _args(experiment: str, *sets: str, quick: bool = False, seeds: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(
        experiment=experiment, config=None, set=list(sets), quick=quick, seeds=seeds, offline=False
    )


def test_quick_starts_from_the_smoke_size_and_user_settings_win():
    cfg = build_config(_args("molora", "lr=1e-4", "tasks=rte,sciq", quick=True, seeds=4))
    assert (cfg.epochs, cfg.train_per_task, cfg.seeds, cfg.lr) == (2, 8, 4, 1e-4)
    assert cfg.tasks == ["rte", "sciq"] and cfg.model == "smollm2"  # quick keeps the real model
    assert build_config(_args("molora", quick=True)).tasks == ["openbookqa", "sst2"]
    assert build_config(_args("moe", quick=True)).tasks == ["winogrande", "openbookqa"]
    full = build_config(_args("moe"))
    assert (full.seeds, full.arms, full.baseline) == (3, ["top2", "top4", "m8k5", "m8k5-ste"], "top4")
    assert full.tasks == ["winogrande", "hellaswag", "piqa", "siqa", "openbookqa", "arc_challenge"]
    assert build_config(_args("molora")).tasks == ["rte", "commonsense_qa", "openbookqa", "sst2", "sciq"]


def test_moe_takes_scaled_arms_from_set_and_its_control_follows_the_reference_arm():
    cfg = build_config(_args("moe", "arms=[top4,m8k5-scaled,m8k5-ste-scaled]", quick=True))
    assert cfg.arms == ["top4", "m8k5-scaled", "m8k5-ste-scaled"] and cfg.baseline == "top4"
    ref = cfg.reference_arm()
    assert ref is not None and ref.name == "m8k5-scaled" and ref.control_weights == "scaled"
    recipes = cfg.resolved()["recipes"]
    assert [recipes[a]["weights"] for a in cfg.arms] == ["opt2", "scaled", "ste-scaled"]


def test_help_lists_each_experiments_keys(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    out = capsys.readouterr().out
    assert "[molora]" in out and "[moe]" in out and "variants" in out and "dial_targets" in out


def test_bad_key_is_one_line_exit_2(capsys, tmp_path):
    assert main(["reproduce", "molora", "--set", "epoch=2", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("adamoe reproduce: error: unknown key(s) epoch") and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_molora_quick_prints_annealing_and_writes_the_report(paper_tasks, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    argv = ["reproduce", "molora", "--quick", "--seeds", "2", "--run-dir", str(run)]
    argv += ["--set", "model=tiny-llama", "--set", f"tasks={','.join(paper_tasks)}"]
    argv += ["--set", "variants=top2,m5k4", "--set", "train_per_task=8", "--set", "test_per_task=8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    head = out.split("resolved config:")[1].split("| model")[0]
    assert "m5k4:" in head and "aux_schedule: step" in head and "aux_loss: null_aware" in head
    metrics = json.loads((run / "metrics.json").read_text())
    assert {r["model"] for r in metrics["table"]} == {"base", "top2", "m5k4"}
    assert (run / "config.yaml").is_file() and (run / "report.html").is_file()
    assert "| m5k4 | average |" in out
    report = (run / "report.md").read_text()
    command = f"adamoe reproduce molora --set model=tiny-llama --set tasks={','.join(paper_tasks)}"
    assert f"Command: {command}" in report and f"--seeds 2 --seed 0 --quick --run-dir {run}" in report
    seed_rows = {(r["model"], r["task"]): r for r in metrics["seed_paired"]}
    assert set(seed_rows) == {("m5k4", t) for t in [*paper_tasks, "average"]}
    assert all(len(r["per_seed"]) == 2 and r["family"] == 3 for r in seed_rows.values())
