"""Routing drift: a set against itself drifts zero; dense models have no routing; the permutation test
against a hand count of extreme splits, its calibration under no drift, and Holm across comparisons."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from adamoe.hf.models import resolve_model
from adamoe.rbench.drift import permutation_p, routing_report
from adamoe.rbench.evaluator import ModelEvaluator
from adamoe.rbench.metrics import js_divergence
from tests.rbench.helpers import short_nli

pytestmark = pytest.mark.usefixtures("one_thread")


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


def _counts(rng: np.random.Generator, n: int, probs: list[np.ndarray]) -> list[np.ndarray]:
    """Per-layer (n, E) expert counts of n items, 20 routing choices per item and layer."""
    return [rng.multinomial(20, p, size=n).astype(float) for p in probs]


def _mean_js(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.mean([js_divergence(x.sum(axis=0), y.sum(axis=0)) for x, y in zip(a, b)]))


def test_permutation_p_matches_the_exact_share_of_splits_on_a_small_case() -> None:
    rng = np.random.default_rng(0)
    probs = [np.array([0.7, 0.1, 0.1, 0.1])]
    a, b = _counts(rng, 3, probs), _counts(rng, 3, [np.array([0.1, 0.1, 0.1, 0.7])])
    pool = [np.concatenate([x, y]) for x, y in zip(a, b)]
    observed = _mean_js(a, b)
    splits = list(itertools.combinations(range(6), 3))  # every way to pick the first group: the exact p
    exact = np.mean(
        [
            _mean_js([p[list(s)] for p in pool], [np.delete(p, s, 0) for p in pool]) >= observed - 1e-12
            for s in splits
        ]
    )
    got = permutation_p(a, b, rng=np.random.default_rng(1), n_perm=4000)
    assert got == pytest.approx(exact, abs=0.02)  # Monte Carlo over the same 20 splits
    assert permutation_p([x[:0] for x in a], b, rng=rng) is None


def test_the_permutation_test_holds_its_level_under_no_drift_and_finds_a_real_shift() -> None:
    rng = np.random.default_rng(0)
    probs = [np.full(8, 1 / 8), np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])]
    null_ps = [
        permutation_p(_counts(rng, 20, probs), _counts(rng, 20, probs), rng=rng, n_perm=99) for _ in range(60)
    ]
    assert np.mean(np.array(null_ps) <= 0.05) <= 0.15  # ~5% expected; 60 draws
    shifted = [np.roll(p, 1) * 0.5 + p * 0.5 for p in probs]  # half the mass moves one expert over
    assert permutation_p(_counts(rng, 40, probs), _counts(rng, 40, shifted), rng=rng) < 0.01
