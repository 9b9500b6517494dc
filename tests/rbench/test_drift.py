"""Routing drift: a set against itself drifts zero; dense models have no routing; the split-half noise floor."""

from __future__ import annotations

import numpy as np
import pytest

from adamoe.eval.significance import within_noise
from adamoe.hf.models import resolve_model
from adamoe.rbench.drift import histogram_floor, routing_report
from adamoe.rbench.evaluator import ModelEvaluator
from adamoe.rbench.metrics import js_divergence
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


def _item_counts(rng: np.random.Generator, n: int, probs: list[np.ndarray]) -> list[np.ndarray]:
    """Per-layer (n, E) expert counts of n items, 20 routing choices per item and layer."""
    return [rng.multinomial(20, p, size=n).astype(float) for p in probs]


def _mean_js(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.mean([js_divergence(x.sum(axis=0), y.sum(axis=0)) for x, y in zip(a, b)]))


def test_drift_between_iid_sets_is_within_the_split_half_floor_and_a_shift_is_not() -> None:
    rng = np.random.default_rng(0)
    probs = [np.full(8, 1 / 8), np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])]
    clean = _item_counts(rng, 40, probs)
    floor = histogram_floor(clean, rng=np.random.default_rng(1))
    assert floor is not None and floor.n == 40 and 0 < floor.mean <= floor.p95
    iid = _item_counts(rng, 40, probs)  # another draw from the same routing: no real drift
    assert within_noise(_mean_js(clean, iid), floor)
    shifted_probs = [np.roll(p, 1) * 0.5 + p * 0.5 for p in probs]  # half the mass moves one expert over
    shifted = _item_counts(rng, 40, shifted_probs)
    assert not within_noise(_mean_js(clean, shifted), floor)
    assert histogram_floor([c[:1] for c in clean], rng=np.random.default_rng(1)) is None  # one item: no floor


def test_routing_report_flags_each_shift_against_the_floor(mixtral) -> None:
    model, tok, info = mixtral
    ev = ModelEvaluator(name="m", model=model, tokenizer=tok, info=info)
    ev.score("d", "st", short_nli(6))
    rep = routing_report(ev, {"a": ("st", None), "b": ("st", None)}, clean="a", seed=0)
    assert rep["noise_floor"]["n"] == 6 and rep["noise_floor"]["p95"] >= 0
    assert rep["shift"]["b"]["within_noise"] is True  # the set against itself: JS 0
