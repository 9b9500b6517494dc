import pytest

from adamoe.rbench.data import formats as F
from adamoe.rbench.records import MCTargets, NLIItem, OpenQAItem, TextLabelItem, TruthfulQAItem


def test_nli_to_mc():
    mc = F.nli_to_mc(NLIItem(id="n1", premise="Ann ran.", hypothesis="Ann moved.", label=2, source="s"))
    assert mc.context == "Ann ran.\nQuestion: Ann moved. True, False or Neither?\nAnswer:"
    assert mc.choices == ["True", "Neither", "False"] and mc.label == 2 and mc.choices[mc.label] == "False"


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


def test_text_label_and_open_qa():
    mc = F.text_label_to_mc(TextLabelItem(id="s", text="Great soup.", label=1))
    assert mc.choices == ["negative", "positive"] and mc.label == 1 and "Great soup." in mc.context
    assert F.open_qa_prompt(OpenQAItem(id="q", question="Who?", answers=("A",))) == "Q: Who?\nA:"
    assert (
        F.open_qa_prompt(OpenQAItem(id="q", question="Who?", answers=("A",), context="C."))
        == "C.\nQ: Who?\nA:"
    )
