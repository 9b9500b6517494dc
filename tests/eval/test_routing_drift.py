"""Routing drift of an evaluator's stages: a set against itself drifts zero, Holm across comparisons, dense
models have no routing (the statistics themselves: tests/stats/test_drift.py)."""

from __future__ import annotations

import pytest

from adamoe.eval.evaluator import ModelEvaluator
from adamoe.eval.routing_drift import routing_report
from adamoe.hf.models import resolve_model
from tests.eval.examples import short_nli


def test_routing_report_of_a_set_against_itself_has_zero_drift(mixtral) -> None:
    model, tok, info = mixtral
    ev = ModelEvaluator(name="m", model=model, tokenizer=tok, info=info)
    ev.score("d", "st", short_nli(6))
    ids = [ex.id for ex in short_nli(6)]
    groups = {"a": ("st", None), "b": ("st", None), "half": ("st", ids[:3]), "other": ("st", ids[3:])}
    rep = routing_report(ev, groups, pairs={"b": "a", "other": "half"}, seed=0)
    assert rep["references"] == ["a", "half"]
    assert (
        rep["shift"]["b"]["js_max"] == pytest.approx(0.0, abs=1e-12)
        and rep["shift"]["b"]["delta_load"] == 0.0
    )
    assert rep["shift"]["b"]["p"] == 1.0 and rep["shift"]["b"]["within_noise"] is True  # every split ties
    assert (
        0 < rep["shift"]["other"]["p"] <= 1 and rep["shift"]["other"]["p_holm"] >= rep["shift"]["other"]["p"]
    )
    dense_model, dense_tok, dense_info = resolve_model("tiny-llama", seed=0)
    dense = ModelEvaluator(name="d", model=dense_model, tokenizer=dense_tok, info=dense_info)
    assert routing_report(dense, {"a": ("st", None)}, pairs={}) is None
