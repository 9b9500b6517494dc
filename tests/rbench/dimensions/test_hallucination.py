"""Hallucination arithmetic and wiring with canned model outputs."""

from __future__ import annotations

import pytest

from adamoe.rbench.data.generated import generate_open_qa, generate_truthfulness_mc
from adamoe.rbench.dimensions.hallucination import HallucinationConfig, HallucinationDimension, extract_answer
from tests.rbench.helpers import FakeEvaluator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_hallucination_scores_follow_the_answers_given() -> None:
    dim = HallucinationDimension(
        HallucinationConfig(n_generated=4, tasks=[], truthfulqa="generated", open_qa="generated")
    )
    data = dim.load(limit=4, seed=0)
    qa = generate_open_qa(4, seed=0)
    answers = {qa[0].id: f" {qa[0].answers[0]}.\nQ: next", qa[1].id: f"{qa[1].answers[0]} indeed"}
    # MC1: the true choice wins on items 0 and 1, a false one on items 2 and 3
    ll = {}
    for i, it in enumerate(generate_truthfulness_mc(4, seed=0)):
        ll[f"{it.id}:mc1"] = [1.0 if (lab == 1) == (i < 2) else 0.0 for lab in it.mc1.labels]
        ll[f"{it.id}:mc2"] = [0.0 for _ in it.mc2.labels]
    result = dim.run(FakeEvaluator(answers=answers, ll=ll), data, seed=0)
    assert result.metrics["mc1"] == 0.5
    n_true = [sum(it.mc2.labels) / len(it.mc2.labels) for it in generate_truthfulness_mc(4, seed=0)]
    assert result.metrics["mc2"] == pytest.approx(sum(n_true) / 4)  # equal likelihoods: mass = share of trues
    assert result.metrics["em"] == 0.25  # only the first answer is exactly right
    assert 0.25 < result.metrics["f1"] < 0.5  # the second has one extra word
    assert result.routing is None
    # every metric carries n and an interval; MC1 ties go to the first choice (lm-eval's argmax)
    for name in ("mc1", "mc2", "em", "f1"):
        est = result.estimates[name]
        assert est["n"] == 4 and est["low"] <= est["value"] <= est["high"]
    assert result.estimates["mc1"]["chance"] == 0.25


def test_extract_answer_takes_the_first_line_before_a_new_question() -> None:
    assert extract_answer("\n  Paris. Q: and Rome?") == "Paris."
    assert extract_answer("") == ""
