"""TruthfulQA and open-QA loaders (faked hub and local files)."""

import csv
import json

import pytest

from adamoe.rbench import data as S


def _tqa_row(q, mc1_labels=(1, 0), mc2_labels=(1, 1, 0)):
    return {
        "question": q,
        "mc1_targets": {"choices": [f"c{i}" for i in range(len(mc1_labels))], "labels": list(mc1_labels)},
        "mc2_targets": {"choices": [f"d{i}" for i in range(len(mc2_labels))], "labels": list(mc2_labels)},
    }


def test_truthfulqa_hub_and_files(fake_hub, tmp_path):
    tables, _ = fake_hub
    tables[("truthfulqa/truthful_qa", "multiple_choice", "validation")] = [_tqa_row("q0"), _tqa_row("q1")]
    items = S.load_truthfulqa_hub()
    assert [it.question for it in items] == ["q0", "q1"]
    assert items[0].mc2.labels == (1, 1, 0) and items[0].mc1.choices == ("c0", "c1")

    f = tmp_path / "tqa.jsonl"
    f.write_text("\n".join(json.dumps(_tqa_row(f"q{i}")) for i in range(3)))
    assert len(S.load_truthfulqa_file(f, limit=2)) == 2
    # CSV holds the targets as JSON text
    c = tmp_path / "tqa.csv"
    row = _tqa_row("qc")
    with c.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "mc1_targets", "mc2_targets"])
        w.writerow(["qc", json.dumps(row["mc1_targets"]), json.dumps(row["mc2_targets"])])
    assert S.load_truthfulqa_file(c)[0].mc1.labels == (1, 0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_tqa_row("qb", mc1_labels=(1, 1, 0))) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl row 0.*exactly one true") as info:
        S.load_truthfulqa_file(bad)
    assert "\n" not in str(info.value)
