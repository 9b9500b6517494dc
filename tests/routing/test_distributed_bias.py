"""Data parallelism over 2 CPU processes (gloo): the sigmoid-bias router's counts and the routing
statistics are summed over the processes, so two processes with different tokens end where one process
on the union of their batches ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.train.test_loop_subprocess import launch, why

CHILD = Path(__file__).with_name("child_sigmoid_bias.py")
pytestmark = pytest.mark.slow


def test_two_processes_keep_one_bias_and_count_every_token(tmp_path: Path) -> None:
    one = launch(CHILD, str(tmp_path / "one"))
    assert one.returncode == 0, why(one)
    two = launch(CHILD, str(tmp_path / "two"), nproc=2)
    assert two.returncode == 0, why(two)
    alone = json.loads((tmp_path / "one.0.json").read_text())
    ranks = [json.loads((tmp_path / f"two.{r}.json").read_text()) for r in (0, 1)]
    assert any(b != 0 for b in alone["bias"])  # the bias did move
    # every step took the same sign step on every process: the one the union's counts give
    assert ranks[0]["bias"] == ranks[1]["bias"] == alone["bias"]
    for got in ranks:  # each process reports the whole run's routing
        layer, want = got["summary"]["layers"][""], alone["summary"]["layers"][""]
        assert layer["tokens"] == want["tokens"] == 6 * 12
        assert layer["expert_counts"] == want["expert_counts"]
        assert layer["load"] == pytest.approx(want["load"])
