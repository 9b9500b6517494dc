"""``adamoe demo`` as a verb: its config keys in --help, bad settings refused before any work."""

from __future__ import annotations

import json

import pytest

from adamoe.cli import main
from adamoe.experiments.demo import DemoConfig


def test_help_lists_every_config_key(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    keys = DemoConfig.keys()
    assert keys and all(key in out for key in keys)


@pytest.mark.parametrize(
    ("setting", "needle"),
    [("baseline_k=9", "baseline_k: expected <= num_experts=8"), ("gate2_init=warm", "gate2_init")],
)
def test_bad_setting_exits_2_and_writes_no_run_directory(tmp_path, capsys, setting, needle):
    assert main(["demo", "--quick", "--set", setting, "--runs-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert list(tmp_path.iterdir()) == []


def test_quick_demo_on_the_moefied_model(tmp_path):
    run = tmp_path / "demo"
    assert main(["demo", "--quick", "--set", "moe=moefy", "--run-dir", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    rows = {r["model"]: r for r in metrics["table"]}
    assert set(rows) == {"dense", "top-2", "AdaMoE m8k3"}
    assert rows["top-2"]["load"] == pytest.approx(2.0)
    assert 0.0 < rows["AdaMoE m8k3"]["load"] < 3.0
    assert "moefied" in metrics["title"]
