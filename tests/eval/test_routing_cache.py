"""Routing statistics survive the score cache: a fresh, a resumed (killed) and a fully cached evaluation
report the same Load and FLOPs; and every routing setting is part of the cache's model identity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from adamoe.data import load_task
from adamoe.eval.cache import model_fingerprint
from adamoe.eval.evaluate import evaluate_tasks
from adamoe.eval.records import BatchInfo
from adamoe.eval.scoring import score_multiple_choice
from adamoe.hf.convert import routers
from adamoe.hf.models import resolve_model
from adamoe.stats import ItemRoutingRecorder, RoutingRecorder

TASK = "synthetic-facts"


@pytest.fixture(scope="module")
def adamoe_model() -> tuple[Any, Any]:
    model, tok, _ = resolve_model("tiny-mixtral-adamoe")  # 4 experts, 8 nulls, top-3, baseline top-2
    gen = torch.Generator().manual_seed(0)  # break the copy-init ties so the load varies per token
    with torch.no_grad():
        for _, router in routers(model):
            router.gate2.add_(torch.randn(router.gate2.shape, generator=gen) * router.weight.std())
    return model, tok


class Killed(RuntimeError):
    pass


def _figures(result) -> tuple[float | None, float | None, float | None, int]:
    r = result[0]
    return r.load, r.expert_flops_pct, r.model_flops_pct, r.routing["tokens"]


def test_fresh_resumed_and_cached_runs_report_the_same_routing(adamoe_model, tmp_path: Path) -> None:
    model, tok = adamoe_model
    examples = load_task(TASK, limit=12)
    tasks = {TASK: examples}
    fresh = evaluate_tasks(model, tok, tasks, baseline_k=2, batch_size=8, progress=False)

    # Independent reference: one model-level recorder over a plain (uncached) scoring run.
    with RoutingRecorder(model, baseline_k=2) as rec:
        score_multiple_choice(model, tok, examples, batch_size=8, on_batch=rec.on_batch, progress=False)
    assert fresh[0].load == pytest.approx(rec.summary()["load"], abs=1e-12)
    assert fresh[0].routing["tokens"] == rec.summary()["tokens"]
    assert 0 < fresh[0].load < 3 and fresh[0].model_flops_pct is not None

    # A run killed at its 3rd forward: the first batch (prefix + suffix) is cached with its routing.
    cache = tmp_path / f"{TASK}.jsonl"
    seen: list[tuple[str, ...]] = []

    def die(info: BatchInfo) -> None:
        seen.append(info.example_ids)
        if len(seen) == 3:
            raise Killed

    with pytest.raises(Killed), ItemRoutingRecorder(model) as item_rec:
        score_multiple_choice(
            model,
            tok,
            examples,
            batch_size=8,
            cache=cache,
            on_batch=die,
            item_routing=item_rec,
            progress=False,
        )
    lines = [json.loads(x) for x in cache.read_text().splitlines()]
    assert 0 < len(lines) < len(examples) and all("routing" in x for x in lines)

    resumed = evaluate_tasks(
        model, tok, tasks, baseline_k=2, batch_size=8, cache_dir=tmp_path, progress=False
    )
    calls: list[int] = []
    handle = model.register_forward_pre_hook(lambda m, a, k: calls.append(1), with_kwargs=True)
    try:
        cached = evaluate_tasks(
            model, tok, tasks, baseline_k=2, batch_size=8, cache_dir=tmp_path, progress=False
        )
    finally:
        handle.remove()
    assert calls == []  # nothing ran, yet the routing is all there
    assert _figures(fresh) == _figures(resumed) == _figures(cached)
    assert fresh[0].acc == resumed[0].acc == cached[0].acc
    assert cached[0].routing["layers"].keys() == fresh[0].routing["layers"].keys()
    for name, layer in fresh[0].routing["layers"].items():
        assert cached[0].routing["layers"][name]["expert_counts"] == layer["expert_counts"]
        assert cached[0].routing["layers"][name]["entropy"] == pytest.approx(layer["entropy"], rel=1e-9)


def test_cache_entries_without_routing_are_rescored(adamoe_model, tmp_path: Path) -> None:
    model, tok = adamoe_model
    examples = load_task(TASK, limit=3)
    score_multiple_choice(
        model, tok, examples, cache=tmp_path / f"{TASK}.jsonl", progress=False
    )  # no routing
    res = evaluate_tasks(model, tok, {TASK: examples}, baseline_k=2, cache_dir=tmp_path, progress=False)
    assert res[0].load is not None and res[0].routing["tokens"] > 0


def test_a_cache_written_in_prefix_mode_is_not_served_to_full_mode(adamoe_model, tmp_path: Path) -> None:
    model, tok = adamoe_model
    tasks = {TASK: load_task(TASK, limit=4)}
    kw = {"baseline_k": 2, "batch_size": 8, "progress": False, "cache_dir": tmp_path}
    prefix = evaluate_tasks(model, tok, tasks, **kw)[0]
    full = evaluate_tasks(model, tok, tasks, mode="full", **kw)[0]
    uncached = evaluate_tasks(model, tok, tasks, baseline_k=2, batch_size=8, progress=False, mode="full")[0]
    assert full.routing["tokens"] == uncached.routing["tokens"] > prefix.routing["tokens"]  # prefix: once
    assert full.load == uncached.load
    assert evaluate_tasks(model, tok, tasks, **kw)[0].load == prefix.load  # each mode keeps its entries


def test_duplicate_ids_are_refused_when_routing_is_recorded(adamoe_model) -> None:
    model, tok = adamoe_model
    ex = load_task(TASK, limit=1)
    with ItemRoutingRecorder(model) as rec, pytest.raises(ValueError, match="ids must be unique"):
        score_multiple_choice(model, tok, ex + ex, item_routing=rec, progress=False)


@pytest.mark.parametrize(
    ("setting", "value"), [("null_bias", 0.5), ("num_null", 7), ("top_k", 2), ("normalize", 1)]
)
def test_every_routing_setting_changes_the_fingerprint(adamoe_model, setting: str, value: Any) -> None:
    model, _ = adamoe_model
    before = model_fingerprint(model)
    router = routers(model)[0][1]
    old = getattr(router, setting)
    assert old != value
    setattr(router, setting, value)
    try:
        assert model_fingerprint(model) != before
    finally:
        setattr(router, setting, old)
    assert model_fingerprint(model) == before


def test_failed_prefix_pass_is_not_counted_twice(adamoe_model) -> None:
    """A model without a reusable KV cache runs one prefix pass, then falls back to full sequences: the
    routing of that abandoned pass must not be added to the items it is then rescored for."""
    from tests.eval.test_scoring import _NoCacheLM

    model, tok = adamoe_model
    examples = load_task(TASK, limit=6)
    with ItemRoutingRecorder(model) as rec:
        full = score_multiple_choice(model, tok, examples, mode="full", item_routing=rec, progress=False)
    wrapped = _NoCacheLM(model)
    kinds: list[str] = []
    with ItemRoutingRecorder(wrapped) as rec:
        fallback = score_multiple_choice(
            wrapped, tok, examples, item_routing=rec, on_batch=lambda i: kinds.append(i.kind), progress=False
        )
    assert kinds[0] == "prefix" and set(kinds[1:]) == {"full"}
    assert full.routing is not None and fallback.routing is not None
    assert fallback.routing.keys() == full.routing.keys()
    for item, layers in full.routing.items():
        got = {name.removeprefix("inner."): vec for name, vec in fallback.routing[item].items()}
        assert got.keys() == layers.keys()
        for layer, vec in layers.items():
            assert got[layer][:4].tolist() == vec[:4].tolist()  # tokens, true/null slots, bypass: not doubled


def test_pad_token_id_falls_back_pad_eos_bos_zero() -> None:
    from types import SimpleNamespace

    from adamoe.eval.encoding import pad_token_id

    assert pad_token_id(SimpleNamespace(pad_token_id=5, eos_token_id=2, bos_token_id=1)) == 5
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=2, bos_token_id=1)) == 2
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=None, bos_token_id=1)) == 1
    assert pad_token_id(SimpleNamespace()) == 0


def test_acc_norm_interval_is_wilson_over_the_length_normalised_hits(adamoe_model) -> None:
    model, tok = adamoe_model
    res = evaluate_tasks(model, tok, {TASK: load_task(TASK, limit=12)}, baseline_k=2, progress=False)[0]
    n, k = res.n, round(res.acc_norm * res.n)
    # Wilson score interval by hand (z = 1.959964)
    z, p = 1.959963984540054, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    ci = res.row()["acc_norm_ci"]
    assert ci["n"] == n and ci["value"] == pytest.approx(res.acc_norm)
    assert ci["low"] == pytest.approx(centre - half) and ci["high"] == pytest.approx(centre + half)
