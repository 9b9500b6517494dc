import pytest

from adamoe.rbench.data import formats as F
from adamoe.rbench.records import MCTargets, OpenQAItem, TruthfulQAItem


def test_truthfulqa_to_mc_keeps_labels():
    it = TruthfulQAItem(
        id="t",
        question="Why?",
        mc1=MCTargets(choices=("a", "b", "c"), labels=(0, 1, 0)),
        mc2=MCTargets(choices=("x", "y", "z"), labels=(0, 1, 1)),
        context="Fact.",
    )
    mc1 = F.truthfulqa_to_mc(it)
    assert mc1.id == "t:mc1" and mc1.label == 1 and mc1.context == "Fact.\nQ: Why?\nA:"
    mc2 = F.truthfulqa_to_mc(it, target="mc2")
    assert mc2.meta["labels"] == [0, 1, 1] and mc2.choices == ["x", "y", "z"] and mc2.label == 1
    with pytest.raises(ValueError, match="target"):
        F.truthfulqa_to_mc(it, target="mc3")


def test_open_qa_prompt():
    assert F.open_qa_prompt(OpenQAItem(id="q", question="Who?", answers=("A",))) == "Q: Who?\nA:"
    assert (
        F.open_qa_prompt(OpenQAItem(id="q", question="Who?", answers=("A",), context="C."))
        == "C.\nQ: Who?\nA:"
    )
