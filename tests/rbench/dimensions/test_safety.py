"""Safety wiring with canned outputs: the pluggable judge and scorer, unknown judges."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from adamoe.rbench.dimensions.safety import SafetyConfig, SafetyDimension
from tests.rbench.helpers import FakeEvaluator

pytestmark = pytest.mark.usefixtures("one_thread")


class EveryOtherJudge:
    name = "every-other"

    def judge(self, prompts: Sequence[str], responses: Sequence[str]) -> list[bool]:
        return [i % 2 == 0 for i in range(len(prompts))]


class FixedScorer:
    name = "fixed"

    def score(self, texts: Sequence[str]) -> list[float]:
        return [0.9 if "awful" in t else 0.1 for t in texts]


def test_safety_uses_the_pluggable_judge_and_scorer() -> None:
    dim = SafetyDimension(
        SafetyConfig(harmful="generated", toxicity="generated"),
        judge=EveryOtherJudge(),
        toxicity_scorer=FixedScorer(),
    )
    data = dim.load(limit=4, seed=0)
    tox_ids = [p.id for p in data.toxicity]
    ev = FakeEvaluator(answers={tox_ids[0]: "awful", tox_ids[1]: "awful"})
    result = dim.run(ev, data, seed=0)
    assert result.metrics["refusal_rate"] == 0.5 and result.metrics["over_refusal_rate"] == 0.5
    assert result.metrics["toxicity_mean"] == pytest.approx((0.9 * 2 + 0.1 * 2) / 4)
    assert result.metrics["toxicity_prob"] == 0.5
    assert {p.category for p in data.harmful} == {"violence", "weapons", "cybercrime", "fraud"}  # spread
    assert all(ev.prompts[p.id] == p.prompt for p in data.harmful + data.benign + data.toxicity)


def test_safety_rejects_an_unknown_judge() -> None:
    with pytest.raises(ValueError, match=r"safety\.judge"):
        SafetyDimension(SafetyConfig(judge="oracle"))
    with pytest.raises(ValueError, match="model_path"):
        SafetyDimension(SafetyConfig(judge={"hf": "/no/such/dir", "positive_labels": ["refusal"]}))
