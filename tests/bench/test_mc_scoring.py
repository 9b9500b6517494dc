"""Scoring vs lm-eval, on a tiny random model (no timing asserts): the speed-up is the paired per-round
ratio of lm-eval's seconds to ours, and our accuracy comes from the untimed run."""

from __future__ import annotations

import pytest

from adamoe.bench.mc_scoring import compare, format_table
from adamoe.data import load_task
from adamoe.hf.models import ModelSpec


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer, _ = ModelSpec.parse("tiny-llama").load(seed=0)
    examples = list(load_task("synthetic-facts", split="test", limit=6))
    return model, tokenizer, examples


@pytest.mark.parametrize("skip_lm_eval", [True, False])
def test_compare_pairs_rounds(tiny, skip_lm_eval):
    model, tokenizer, examples = tiny
    res = compare(model, tokenizer, examples, batch_size=4, repeats=2, threads=1, skip_lm_eval=skip_lm_eval)
    assert res["requests"] == sum(len(e.choices) for e in examples)
    assert len(res["ours"]["seconds_runs"]) == 2 and 0 <= res["ours"]["acc"] <= 1
    if skip_lm_eval:
        assert "speedup" not in res and "lm_eval" not in res
    else:
        ratio = [t / o for t, o in zip(res["lm_eval"]["seconds_runs"], res["ours"]["seconds_runs"])]
        assert res["speedup"]["ratio"] == pytest.approx((ratio[0] * ratio[1]) ** 0.5)
        assert res["agreement"]["pred_agreement"] == 1.0  # same model, same requests, same answers
        assert "speed-up" in format_table(res)
