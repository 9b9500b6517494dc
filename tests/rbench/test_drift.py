"""Routing drift: a set against itself drifts zero; dense models have no routing."""

from __future__ import annotations

import pytest

from adamoe.hf.models import resolve_model
from adamoe.rbench.drift import routing_report
from adamoe.rbench.evaluator import ModelEvaluator
from tests.rbench.helpers import short_nli

pytestmark = pytest.mark.usefixtures("one_thread")


def test_routing_report_of_a_set_against_itself_has_zero_drift(mixtral) -> None:
    model, tok, info = mixtral
    ev = ModelEvaluator(name="m", model=model, tokenizer=tok, info=info)
    ev.score("d", "st", short_nli(4))
    rep = routing_report(ev, {"a": ("st", None), "b": ("st", None)}, clean="a")
    assert rep["shift"]["b"]["js_max"] == pytest.approx(0.0, abs=1e-12)
    assert rep["shift"]["b"]["delta_load"] == 0.0
    dense_model, dense_tok, dense_info = resolve_model("tiny-llama", seed=0)
    dense = ModelEvaluator(name="d", model=dense_model, tokenizer=dense_tok, info=dense_info)
    assert routing_report(dense, {"a": ("st", None)}, clean="a") is None
