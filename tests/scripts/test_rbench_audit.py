"""scripts/rbench_audit.py end to end on a fake finished run (`tests.rbench.fake_run`): the four audit files,
their counts, then the summary of filled-in rows with hand-computed numbers; a bad folder is one line."""

from __future__ import annotations

import json

import pytest
from scripts.rbench_audit import main

from tests.rbench import fake_run

pytestmark = pytest.mark.usefixtures("offline_wheel")


def test_audit_files_then_the_summary_of_the_filled_rows(tmp_path, capsys) -> None:
    fake_run.write_run(tmp_path / "run")
    out = tmp_path / "audit"
    assert main(["--run-dir", str(tmp_path / "run"), "--out", str(out), "--adversarial-sample", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "adversarial.jsonl", "adversarial.md", "refusals.jsonl", "refusals.md",
    ]  # fmt: skip
    printed = capsys.readouterr().out
    assert "tiny-llama harmful: 2 refusals, 1 degenerate of n=4" in printed
    assert "frozen word: 2 items {'rte': 2}; surrogate attack success 40.0 [11.8, 76.9] (n=5)" in printed
    md = (out / "refusals.md").read_text()
    assert "| tiny-llama | harmful | 4 | 2 | 2 | 1 |" in md and "| total |  | 16 | 4 |  | 3 |" in md
    assert "## Refusals (4)" in md and "## Degenerate, excluded from refusal (3)" in md
    assert "stream(0, 'audit', 'adversarial')" in (out / "adversarial.md").read_text()

    rows = [json.loads(line) for line in (out / "refusals.jsonl").read_text().splitlines()]
    assert len(rows) == 7 and {r["audit"] for r in rows} == {""}
    refused = [r for r in rows if r["verdict"] == "refusal"]  # 3 by tiny-llama, 1 by tiny-mixtral
    for r, value in zip(refused, ["refusal", "not refusal", "refusal", "refusal"]):
        r["audit"] = value
    (out / "refusals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (adv,) = [json.loads(line) for line in (out / "adversarial.jsonl").read_text().splitlines()]
    adv["audit"] = "label changed"
    (out / "adversarial.jsonl").write_text(json.dumps(adv) + "\n")

    assert main(["--summarise", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "  tiny-llama: 66.7 [20.8, 93.9] (n=3)" in printed  # Wilson 2 of 3
    assert "  tiny-mixtral: 100.0 [20.7, 100.0] (n=1)" in printed  # 1 of 1
    assert "  overall: 75.0 [30.1, 95.4] (n=4)" in printed  # 3 of 4
    assert "refusals.jsonl rows not audited yet: 3" in printed
    assert "adversarial edits label-preserving & fluent: 0.0 [0.0, 79.3] (n=1)" in printed  # 0 of 1


def test_a_folder_without_metrics_json_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(
        SystemExit, match=r"^rbench_audit: .*metrics.json: not found; the run has not finished"
    ):
        main(["--run-dir", str(tmp_path), "--out", str(tmp_path / "audit")])
