from adamoe.rbench.data import formats as F
from adamoe.rbench.records import OpenQAItem


def test_open_qa_prompt():
    assert F.open_qa_prompt(OpenQAItem(id="q", question="Who?", answers=("A",))) == "Q: Who?\nA:"
    assert (
        F.open_qa_prompt(OpenQAItem(id="q", question="Who?", answers=("A",), context="C."))
        == "C.\nQ: Who?\nA:"
    )
