"""The compute dial: the bias search on steep and shallow load curves, and the dial on a real tiny model.

References: a hand-written load curve (a steep logistic, the shape measured on the moefied SmolLM2 where
+0.06 moves the load from 2.0 to 0.76), and on the model a naive recount of true-expert picks per token,
one unpadded forward per request, against the numbers :func:`evaluate_tasks` reports.
"""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch

from adamoe.data import MCExample
from adamoe.eval.dial import LoadCurve, dial_biases, dial_curve, null_routers, search_null_bias
from adamoe.eval.encoding import LMEncoder
from adamoe.eval.evaluate import evaluate_tasks
from adamoe.eval.flops import DecoderShape, flops_figures
from adamoe.hf.models import ModelSpec
from adamoe.routing.source import routing_sources


@pytest.fixture(scope="module")
def tiny():
    return ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)


def steep(bias: float, *, centre: float = 0.03, width: float = 0.004) -> float:
    """Load 2 -> 0 over a few hundredths of bias, like a trained router."""
    return 2.0 / (1.0 + math.exp((bias - centre) / width))


class Counting:
    """``measure_load`` reading the model's dial through a hand-written curve, counting the calls."""

    def __init__(self, curve=steep):
        self.curve, self.calls = curve, []

    def __call__(self, model) -> float:
        bias = null_routers(model)[0].null_bias
        self.calls.append(bias)
        return self.curve(bias)


@pytest.mark.parametrize("target", [1.9, 1.5, 1.0, 0.5, 0.1])
def test_search_hits_targets_on_a_steep_curve_within_the_old_budget(tiny, target):
    model = tiny[0]
    measure = Counting()
    # the experiment's settings: range +-2, 8 bisection steps, tolerance 0.05 (a plain bisection of
    # [-2, 2] resolves 4 / 2**8 = 0.016 of bias, four times the curve's width, and misses the targets)
    found = search_null_bias(model, measure, target_load=target, low=-2.0, high=2.0, iters=8, tol=0.05)
    assert abs(found["load"] - target) <= 0.05
    assert found["load"] == steep(found["bias"])
    assert null_routers(model)[0].null_bias == found["bias"]  # the dial is left at the bias found
    assert all(abs(b) <= 2.0 for b in measure.calls)
    assert len(measure.calls) == len(set(measure.calls)) == len(found["trace"])  # each bias measured once


def test_search_goes_negative_for_a_load_above_the_current_one(tiny):
    model = tiny[0]
    found = search_null_bias(
        model, Counting(lambda b: steep(b, centre=-0.5, width=0.1)), target_load=1.6, tol=0.01
    )
    assert found["bias"] < 0 and abs(found["load"] - 1.6) <= 0.01


def test_unreachable_target_returns_the_extreme_without_bisecting(tiny):
    model = tiny[0]
    measure = Counting(lambda b: 1.0 + 0.5 * math.tanh(-b))  # loads in (0.5, 1.5) only
    found = search_null_bias(model, measure, target_load=0.2, high=8.0, tol=0.01)
    assert found["bias"] == 8.0 and found["load"] == pytest.approx(1.0 + 0.5 * math.tanh(-8.0))
    expansions = math.ceil(math.log(8.0 / 0.01, 4)) + 1  # 0.01, 0.04, ... capped at 8, plus bias 0
    assert len(measure.calls) == expansions + 1


def test_dial_biases_spread_over_the_load_range_and_share_measurements(tiny):
    model = tiny[0]
    measure = Counting()
    curve = LoadCurve(model, measure, bound=1.0)
    biases = dial_biases(curve, num_points=5, tol=0.02)
    loads = [steep(b) for b in biases]
    assert 0.0 in biases and len(biases) == 6
    hi, lo = steep(-1.0), steep(1.0)
    targets = [lo + (hi - lo) * (i + 1) / 6 for i in range(5)]
    found = sorted(loads[: biases.index(0.0)] + loads[biases.index(0.0) + 1 :])
    assert found == pytest.approx(targets, abs=0.02)
    assert len(measure.calls) == len(set(measure.calls))  # memoised across the five searches


def naive_recount(model, tok, examples) -> dict[str, float]:
    """Per routing source: true-expert picks per token, one unpadded forward per request."""
    picks: dict[str, list[int]] = {}

    def hook(name):
        def count(_module, routing):
            got = picks.setdefault(name, [0, 0])
            got[0] += int(((routing.indices >= 0) & (routing.indices < routing.num_experts)).sum())
            got[1] += routing.indices.shape[0]

        return count

    sources = list(routing_sources(model))
    for name, src in sources:
        src.routing_callbacks.append(hook(name))
    enc = LMEncoder(tok)
    try:
        with torch.no_grad():
            for ex in examples:
                for context, continuation in ex.requests():
                    ctx, cont = enc.encode_pair(context, continuation)
                    model(torch.tensor([(ctx + cont)[:-1]]))
    finally:
        for _, src in sources:
            src.routing_callbacks.pop()
    return {name: t / n for name, (t, n) in picks.items()}


def test_dial_moves_load_and_whole_model_flops_monotonically_on_a_tiny_model(tiny):
    model, tok, info = tiny
    # two equal-length choices per item: no padding, so the scorer and the recount see the same tokens
    examples = [
        MCExample(
            id=f"d{i}", context=f"Item {i}: the colour of {w} is", choices=["red", "tan"], label=0, task="d"
        )
        for i, w in enumerate(["sky", "sea", "grass", "snow", "soil", "sand"])
    ]
    k = info["baseline_k"]

    def report(m):
        (row,) = evaluate_tasks(
            m, tok, {"d": examples}, baseline_k=k, batch_size=2, progress=False, mode="full"
        )
        return row

    curve = LoadCurve(model, lambda m: report(m).load, bound=16.0)
    biases = dial_biases(curve, num_points=4, tol=0.05)

    def point(m):
        row, per_layer = report(m), naive_recount(m, tok, examples)
        load = sum(per_layer.values()) / len(per_layer)
        flops = flops_figures(
            DecoderShape.from_config(m.config), load=load, baseline_k=k, num_null=info["num_null"]
        )
        assert row.load == pytest.approx(load, abs=1e-12)
        assert {n: s["load"] for n, s in row.routing["layers"].items()} == pytest.approx(per_layer, abs=1e-12)
        assert row.model_flops_pct == pytest.approx(flops["model_flops_pct"], abs=1e-9)
        assert row.expert_flops_pct == pytest.approx(100 * load / k)
        return {"acc": row.acc, "load": row.load, "flops": row.model_flops_pct}

    points = dial_curve(model, point, biases)
    loads, flops = [p["load"] for p in points], [p["flops"] for p in points]
    assert [p["bias"] for p in points] == sorted(biases)
    assert all(a >= b for a, b in pairwise(loads)) and all(a >= b for a, b in pairwise(flops))
    assert len(set(loads)) >= 4 and loads[0] > loads[-1]
    assert flops[0] > flops[-1] and flops[-1] < 100.0
