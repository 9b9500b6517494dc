"""JSONL run logs: appending and cutting back to a checkpoint's step."""

from __future__ import annotations

import json

from adamoe.train.runlog import append_jsonl, truncate_jsonl


def test_truncate_keeps_steps_up_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    path = tmp_path / "log.jsonl"
    for step in (1, 2, 3):
        append_jsonl(path, {"step": step, "loss": 1.0 / step})
    with path.open("a") as fh:
        fh.write('{"step": 4, "lo')  # died mid-line
    truncate_jsonl(path, keep_through=2)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]


def test_truncate_leaves_a_missing_file_missing(tmp_path):
    truncate_jsonl(tmp_path / "none.jsonl", keep_through=3)
    assert not (tmp_path / "none.jsonl").exists()
