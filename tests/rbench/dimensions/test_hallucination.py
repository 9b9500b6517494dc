"""Hallucination arithmetic and wiring with canned model outputs (reference: counts by hand)."""

from __future__ import annotations

import pytest

from adamoe.data.examples import MCExample
from adamoe.rbench.dimensions.hallucination import HallucinationConfig, HallucinationDimension
from tests.rbench.helpers import FakeEvaluator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_closed_book_items_are_exactly_one_of_correct_abstained_wrong(offline_wheel) -> None:
    dim = HallucinationDimension(HallucinationConfig(closed_book=["nq_open", "trivia_qa"], claims="none"))
    data = dim.load(limit=4, seed=0)
    nq, tqa = data.closed_book["nq_open"], data.closed_book["trivia_qa"]
    assert len(nq) == len(tqa) == 4 and all(it.answers for it in nq + tqa)
    answers = {
        nq[0].id: f" It is {nq[0].answers[0]}.\nQ: next",  # a gold alias inside a sentence: correct
        nq[1].id: "I don't know.",  # abstained
        nq[2].id: "Someone else entirely",  # wrong (made up)
        # nq[3]: empty answer = abstained
        tqa[0].id: tqa[0].answers[-1].upper(),  # another alias, other case: correct
    }
    ev = FakeEvaluator(answers=answers)
    result = dim.run(ev, data, seed=0)
    assert result.metrics["correct_nq_open"] == 0.25
    assert result.metrics["abstain_nq_open"] == 0.5
    assert result.metrics["wrong_nq_open"] == 0.25
    assert (result.metrics["correct_trivia_qa"], result.metrics["abstain_trivia_qa"]) == (0.25, 0.75)
    assert result.estimates["wrong_nq_open"]["n"] == 4 and result.routing is None
    prompt = ev.prompts[nq[0].id]
    assert prompt.startswith(HallucinationConfig().instruction) and prompt.endswith(
        f"Q: {nq[0].question}\nA:"
    )


def test_claim_sets_score_the_truthful_pick() -> None:
    dim = HallucinationDimension(HallucinationConfig(closed_book=[], claims="none"))
    data = dim.load(limit=None, seed=0)
    data.claims["falseclaims"] = [
        MCExample(id=f"c{i}", context=f"claim {i}\nAnswer:", choices=["True", "False"], label=1, task="x")
        for i in range(4)
    ]
    ll = {"c0": [0.0, 1.0], "c1": [0.0, 1.0], "c2": [1.0, 0.0], "c3": [0.0, 0.0]}  # c3: tie -> first choice
    result = dim.run(FakeEvaluator(ll=ll), data, seed=0)
    assert result.metrics["acc_falseclaims"] == 0.5
    assert result.estimates["acc_falseclaims"]["chance"] == 0.5


def test_claim_reference_is_the_length_only_pick_when_it_beats_a_uniform_guess() -> None:
    dim = HallucinationDimension(HallucinationConfig(closed_book=[], claims="none"))
    data = dim.load(limit=None, seed=0)
    choices = [(["No", "Certainly"], 0), (["Yes", "No"], 1), (["ab", "cd"], 0), (["Never", "No"], 0)]
    data.claims["falseclaims"] = [
        MCExample(id=f"c{i}", context="claim\nAnswer:", choices=c, label=y, task="x")
        for i, (c, y) in enumerate(choices)
    ]
    ll = {f"c{i}": [0.0, 1.0] for i in range(4)}
    result = dim.run(FakeEvaluator(ll=ll), data, seed=0)
    # shortest choice (first on a tie) is gold for c0, c1, c2, not c3: 3/4 > the uniform 1/2
    assert result.estimates["acc_falseclaims"]["chance"] == 0.75
    assert result.estimates["acc_norm_falseclaims"]["chance"] == 0.75


def test_unknown_claim_sets_are_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"hallucination\.claims: unknown set\(s\) \['nope'\]"):
        HallucinationConfig(claims=["nope"]).validate()
