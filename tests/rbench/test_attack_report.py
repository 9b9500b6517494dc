"""The adversarial report's audit lines: original -> perturbed, edits, prediction before -> after, gold.

Reference: a hand-written attack record and the choice names it must be translated to.
"""

from __future__ import annotations

from adamoe.data.spans import SpanMCItem
from adamoe.rbench.dimensions.adversarial import audit
from adamoe.rbench.report.details import attack_lines

ITEM = SpanMCItem(
    id="nli-1",
    text="The cat sat on the mat.",
    prefix="Premise: A cat is on a mat. Hypothesis: ",
    suffix=" Answer:",
    choices=("entailment", "neutral", "contradiction"),
    label=0,
    task="nli",
)
RECORD = {
    "key": "nli-1",
    "original": "The cat sat on the mat.",
    "perturbed": "The cat sat on the rug.",
    "edits": ["mat → rug (word)"],
    "clean_label": 0,
    "adv_label": 2,
    "clean_margin": 0.5,
    "adv_margin": -0.25,
}


def test_audit_names_the_predicted_and_gold_choices() -> None:
    (rec,) = audit([RECORD], [ITEM])
    assert (rec["gold"], rec["before"], rec["after"]) == ("entailment", "entailment", "contradiction")
    assert rec["perturbed"] == RECORD["perturbed"]


def test_attack_lines_show_each_successful_attack_for_a_person_to_audit() -> None:
    (rec,) = audit([RECORD], [ITEM])
    attacks = {
        "word": {"n": 10, "examples": [rec] * 5},
        "char": {"n": 10, "examples": []},
        "x": {"skipped": "no"},
    }
    lines = attack_lines("m", attacks)
    assert (
        len(lines) == 3 + 1
    )  # at most 3 shown per attack, a line saying none succeeded, skipped ones omitted
    assert lines[0] == (
        "m · word: 'The cat sat on the mat.' → 'The cat sat on the rug.' (edits: mat → rug (word)); "
        "prediction 'entailment' → 'contradiction' (gold 'entailment', margin +0.50 → -0.25)"
    )
    assert lines[-1] == "m · char: no successful attack on 10 items"
