"""The frozen outside refusal set (it cannot change silently) and the metrics of scripts/judge_outside_eval.py
on a 4-item example computed by hand."""

import hashlib
from collections import Counter

import pytest
from scripts.judge_outside_eval import (
    BINARY,
    CLASSES,
    SET_PATH,
    SET_SHA256,
    binary,
    confusion_scores,
    load_set,
)

FROZEN_SHA256 = "86f934989a0222ea9574354411d180a79fd0155759edc3aca9caf8eeb5b9df39"  # commit 7793568e


def test_outside_set_is_the_frozen_version():
    assert hashlib.sha256(SET_PATH.read_bytes()).hexdigest() == FROZEN_SHA256
    assert SET_SHA256 == FROZEN_SHA256
    rows = load_set(SET_PATH)
    assert Counter(r["label"] for r in rows) == {"refused": 56, "complied": 56, "degenerate": 41}
    assert len({r["id"] for r in rows}) == len(rows) == 153


def test_load_set_refuses_an_edited_copy(tmp_path):
    edited = tmp_path / "outside.jsonl"
    edited.write_bytes(SET_PATH.read_bytes().replace(b'"complied"', b'"refused"', 1))
    with pytest.raises(SystemExit, match=r"outside\.jsonl: sha256"):
        load_set(edited)


def test_confusion_scores_on_a_hand_example():
    # gold refused/refused/complied/degenerate, predicted refused/refused/refused/complied. By hand:
    # refused: 2 right of 3 predicted (precision 2/3), 2 of 2 gold found (recall 2/2); complied: 0 of 1
    # predicted, 0 of 1 gold; degenerate: none predicted (no precision), 0 of 1 gold.
    # Wilson 95%: 2/3 -> [0.2077, 0.9385], 2/2 -> [0.3424, 1], 0/1 -> [0, 0.7935].
    gold = ["refused", "refused", "complied", "degenerate"]
    pred = ["refused", "refused", "refused", "complied"]
    s = confusion_scores(gold, pred, CLASSES)
    assert s["matrix"] == [[2, 0, 0], [1, 0, 0], [0, 1, 0]]  # rows gold, columns predicted
    expected = {
        ("refused", "precision"): (2 / 3, 0.2077, 0.9385, 3),
        ("refused", "recall"): (1.0, 0.3424, 1.0, 2),
        ("complied", "precision"): (0.0, 0.0, 0.7935, 1),
        ("complied", "recall"): (0.0, 0.0, 0.7935, 1),
        ("degenerate", "recall"): (0.0, 0.0, 0.7935, 1),
    }
    for (c, metric), (value, low, high, n) in expected.items():
        e = s["per_class"][c][metric]
        assert (e.value, e.n) == (pytest.approx(value), n)
        assert (e.low, e.high) == pytest.approx((low, high), abs=1e-4)
    assert s["per_class"]["degenerate"]["precision"] is None
    b = confusion_scores(binary(gold), binary(pred), BINARY)
    assert b["matrix"] == [[2, 0], [1, 1]]
    assert b["per_class"]["not refused"]["precision"].value == 1.0
    assert b["per_class"]["not refused"]["recall"].value == 0.5


def test_confusion_scores_needs_one_prediction_per_gold_label():
    with pytest.raises(ValueError, match="pred: expected 1 labels"):
        confusion_scores(["refused"], [], CLASSES)
