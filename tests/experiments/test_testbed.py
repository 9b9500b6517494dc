"""The testbed search's routed share, against a hand count of a small Qwen2-MoE's FLOPs."""

from __future__ import annotations

import pytest
from transformers import Qwen2MoeConfig

from adamoe.experiments.testbed import CANDIDATES, _report, routed_share


def _config(shared: int) -> Qwen2MoeConfig:
    return Qwen2MoeConfig(
        vocab_size=100,
        hidden_size=16,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=8,
        num_experts_per_tok=2,
        moe_intermediate_size=8,
        shared_expert_intermediate_size=shared,
    )


def test_routed_share_is_the_routed_experts_over_the_whole_model_by_hand():
    h, d, ctx = 16, 4, 128  # head_dim 16/4
    attention = 2 * (h * 4 * d + 2 * h * 2 * d + 4 * d * h) + 2 * 4 * (d + d) * ctx
    experts = 2 * 3 * h * 8 * 2  # k = 2 experts of 8 neurons, 3 matrices
    shared = 2 * 3 * h * 24
    router = 2 * h * 8
    head = 2 * h * 100
    total = 2 * (attention + experts + shared + router) + head
    out = routed_share(_config(24))
    assert out["routed_share"] == pytest.approx(2 * experts / total)
    assert out["total_mflop"] == pytest.approx(total / 1e6, abs=0.01)
    at_one = routed_share(_config(24), load=1.0)["routed_share"]
    assert at_one == pytest.approx(experts / (total - experts))  # load 1 halves the routed part


def test_candidates_start_from_the_default_build_and_the_report_names_the_command():
    assert CANDIDATES[0].shared_fraction == 0.5 and CANDIDATES[0].top_k == 2
    assert len({c.key() for c in CANDIDATES}) == len({c.name for c in CANDIDATES}) == len(CANDIDATES)
    assert CANDIDATES[0].name == "core50-e8-top2" and CANDIDATES[-1].name == "core0-e8-top4-r40"
    row = {"nll": 4.0, "dev": {"mean_acc": 40.0, "mean_acc_norm": 42.0}}
    cand = {**row, "recipe": {"shared_fraction": 0.0, "num_experts": 8, "top_k": 4, "recovery_steps": 0}}
    text = _report(
        {"dense": row, "candidates": [{**cand, "routed_share": 0.4}], "n_texts": 3, "dev_per_task": 5}, "CMD"
    )
    assert "`CMD`" in text and "| 40.0% | 4.000 | +0.000 |" in text


class _Stopped(Exception):
    pass


def test_the_search_resumes_without_re_measuring(tmp_path, monkeypatch):
    from adamoe.data import loaders
    from adamoe.experiments import moe_model, testbed

    monkeypatch.setattr(moe_model, "heldout_texts", lambda n: ["a text"] * 2)
    monkeypatch.setattr(loaders, "load_task", lambda *a, **k: [])
    monkeypatch.setattr(testbed, "_dense_reference", lambda texts, dev: {"nll": 1.0})
    measured, stop = [], [True]

    def fake_measure(recipe, *, texts, dev, log):
        measured.append(recipe.name)
        if len(measured) == 2 and stop.pop():
            raise _Stopped  # the first run stops during the second candidate
        return {"key": recipe.key(), "name": recipe.name}

    monkeypatch.setattr(testbed, "measure_candidate", fake_measure)
    saver = testbed._Saver(tmp_path, "CMD")
    with pytest.raises(_Stopped):
        testbed.run_search(CANDIDATES[:3], save=saver)
    measured.clear()
    stop.append(False)
    out = testbed.run_search(CANDIDATES[:3], save=saver)  # measures only what is missing
    assert measured == [c.name for c in CANDIDATES[1:3]]
    assert [c["name"] for c in out["candidates"]] == [c.name for c in CANDIDATES[:3]]
    assert not list(tmp_path.glob("*.tmp"))
