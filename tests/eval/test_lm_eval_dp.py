"""Data-parallel lm-eval with ``--model adamoe`` over 2 CPU processes (gloo): lm-eval splits the requests
between the processes, and the routing report rank 0 writes covers both processes' requests, the same
tokens and load as one process evaluating everything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.train.test_loop_subprocess import launch, why

pytest.importorskip("lm_eval")
pytestmark = pytest.mark.slow
CHILD = Path(__file__).with_name("child_lm_eval_dp.py")


def test_two_processes_split_the_requests_and_report_the_whole_run(tmp_path: Path) -> None:
    from adamoe.data.synthetic import generate_synthetic
    from adamoe.eval.lm_eval_compare import write_lm_eval_tasks

    (task,) = write_lm_eval_tasks(generate_synthetic("synthetic-arith", "test", limit=8), tmp_path)
    one = launch(CHILD, str(tmp_path), task, str(tmp_path / "one"))
    assert one.returncode == 0, why(one)
    two = launch(CHILD, str(tmp_path), task, str(tmp_path / "two"), nproc=2)
    assert two.returncode == 0, why(two)
    alone = json.loads((tmp_path / "one.0.json").read_text())
    ranks = [json.loads((tmp_path / f"two.{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]  # requests were split
    assert "routing" not in ranks[1]  # only rank 0 gets lm-eval's results back
    got, want = ranks[0]["routing"], alone["routing"]
    assert ranks[0]["acc"] == alone["acc"]
    assert got["tokens"] == want["tokens"] > 0  # rank 0 alone saw about half of them
    for name, layer in want["layers"].items():
        assert got["layers"][name]["tokens"] == layer["tokens"]
        assert sum(got["layers"][name]["expert_counts"]) == sum(layer["expert_counts"])
    assert got["load"] == pytest.approx(want["load"], abs=0.02)
