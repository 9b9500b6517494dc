"""The frozen outside refusal set (it cannot change silently) and the metrics of scripts/judge_outside_eval.py
on a 4-item example computed by hand."""

import hashlib
from collections import Counter

import pytest
from scripts.judge_outside_eval import (
    BINARY,
    CLASSES,
    DATA,
    FROZEN,
    SET_PATH,
    binary,
    confusion_scores,
    load_set,
)

# the hashes recorded when each set was committed (7793568e, bbddf0a), written here independently
RECORDED = {
    "outside_refusal_set.jsonl": (
        "86f934989a0222ea9574354411d180a79fd0155759edc3aca9caf8eeb5b9df39",
        56,
        56,
        41,
    ),
    "outside_refusal_set_2.jsonl": (
        "2daeaed734ee3c54a6ebf09a230ba0804cac9f377963d1d91f80e1a33a5c7633",
        60,
        60,
        40,
    ),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_outside_sets_are_the_frozen_versions(name):
    sha, refused, complied, degenerate = RECORDED[name]
    path = DATA / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha == FROZEN[name]
    rows = load_set(path)
    assert Counter(r["label"] for r in rows) == {
        "refused": refused,
        "complied": complied,
        "degenerate": degenerate,
    }
    assert len({r["id"] for r in rows}) == len(rows) == refused + complied + degenerate
    assert SET_PATH.name == "outside_refusal_set_2.jsonl"  # the default is the unspent set


def test_an_unknown_file_is_not_a_frozen_set(tmp_path):
    other = tmp_path / "mine.jsonl"
    other.write_text("{}\n")
    with pytest.raises(SystemExit, match="not a frozen set"):
        load_set(other)


def test_load_set_refuses_an_edited_copy(tmp_path):
    edited = tmp_path / "outside_refusal_set_2.jsonl"
    edited.write_bytes(SET_PATH.read_bytes().replace(b'"complied"', b'"refused"', 1))
    with pytest.raises(SystemExit, match=r"outside_refusal_set_2\.jsonl: sha256"):
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
