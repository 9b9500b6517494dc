"""The model evaluator: per-item routing adds up to the model-level recorder, the item cache, input checks,
output signatures, and batched generation that routes like one prompt at a time (the `transformers` reference).

Reference: `adamoe.stats.RoutingRecorder` over the same forwards (per-item sums must add up to it).
"""

from __future__ import annotations

from typing import Any

import pytest
from transformers import GenerationConfig

from adamoe.eval.evaluator import ModelEvaluator, evaluator_factory
from adamoe.eval.scoring import score_multiple_choice
from adamoe.eval.settings import EvalSettings
from adamoe.hf.models import resolve_model
from adamoe.stats import ItemRoutingRecorder, RoutingRecorder, summarise_packs
from tests.eval.examples import assert_same_routing, short_nli

# ---------------------------------------------------------------- per-item routing


def test_item_routing_sums_to_routing_recorder_over_the_same_forwards(mixtral) -> None:
    model, tok, _ = mixtral
    examples = short_nli(7)
    with RoutingRecorder(model, baseline_k=2) as ref, ItemRoutingRecorder(model) as items:

        def hook(batch: Any) -> None:
            ref.on_batch(batch)
            items.on_batch(batch)

        score_multiple_choice(model, tok, examples, batch_size=5, progress=False, on_batch=hook)
    assert set(items.items) == {ex.id for ex in examples}
    assert items.unattributed_tokens == 0
    got = summarise_packs(items.items.values(), items.shapes, baseline_k=2, order=list(items.sources))
    assert_same_routing(got, ref.summary())
    assert got["flops_pct"] == pytest.approx(ref.summary()["flops_pct"])


def test_item_routing_does_not_depend_on_batch_composition(mixtral) -> None:
    model, tok, _ = mixtral
    examples = short_nli(5)
    with ItemRoutingRecorder(model) as batched:
        score_multiple_choice(model, tok, examples, batch_size=9, progress=False, on_batch=batched.on_batch)
    for ex in examples:
        with ItemRoutingRecorder(model) as alone:
            score_multiple_choice(model, tok, [ex], batch_size=9, progress=False, on_batch=alone.on_batch)
        for layer, vec in alone.items[ex.id].items():
            assert batched.items[ex.id][layer][:4].tolist() == vec[:4].tolist()  # token and slot counts
            assert batched.items[ex.id][layer] == pytest.approx(vec, rel=1e-6)


# ---------------------------------------------------------------- evaluator cache


def test_score_cache_reuses_items_and_their_routing(mixtral, tmp_path) -> None:
    model, tok, info = mixtral
    examples = short_nli(5)
    first = ModelEvaluator(name="m", model=model, tokenizer=tok, info=info, cache_dir=tmp_path, chunk_size=2)
    rec1 = first.score("adversarial", "st", examples)
    assert first.computed["score"] == 5

    second = ModelEvaluator(name="m", model=model, tokenizer=tok, info=info, cache_dir=tmp_path)
    rec2 = second.score("adversarial", "st", examples)
    assert second.computed["score"] == 0 and all(r.cached for r in rec2)
    assert [r.loglikelihoods for r in rec2] == [r.loglikelihoods for r in rec1]
    assert second.routing_summary("st") == first.routing_summary("st")

    other, tok2, info2 = resolve_model("tiny-mixtral", seed=5)  # other weights: other fingerprint, no reuse
    third = ModelEvaluator(name="m", model=other, tokenizer=tok2, info=info2, cache_dir=tmp_path)
    third.score("adversarial", "st", examples[:2])
    assert third.computed["score"] == 2


def test_duplicate_ids_and_empty_sets_are_rejected(mixtral) -> None:
    model, tok, info = mixtral
    ev = ModelEvaluator(name="m", model=model, tokenizer=tok, info=info)
    ex = short_nli(1)[0]
    with pytest.raises(ValueError, match="appears twice"):
        ev.score("d", "st", [ex, ex])
    with pytest.raises(ValueError, match="at least one"):
        ev.generate("d", "st", [], max_new_tokens=2)


def test_evaluator_factory_copies_the_batching_settings(mixtral) -> None:
    model, tok, info = mixtral
    cfg = EvalSettings(batch_size=3, gen_batch_size=2, chunk_size=5, progress=False)
    ev = evaluator_factory(cfg, on_call=None)(name="m", model=model, tokenizer=tok, info=info)
    again = evaluator_factory(ev, on_call=None)(name="m2", model=model, tokenizer=tok, info={})
    for e in (ev, again):
        assert (e.batch_size, e.gen_batch_size, e.chunk_size, e.progress) == (3, 2, 5, False)
    assert again.name == "m2" and again.info == {}


def test_signature_fingerprints_outputs_per_call_and_query_is_uncached_and_counted(mixtral) -> None:
    model, tok, info = mixtral
    ev = ModelEvaluator(name="m", model=model, tokenizer=tok, info=info)
    examples = short_nli(3)
    assert ev.signature() == ev.signature()  # nothing answered: the sha1 of nothing, twice
    ev.score("d", "st", examples)
    first = ev.signature()
    ev.score("d", "st", examples)  # same picks again (from the in-memory state, no cache dir)
    assert ev.signature() == first
    ev.score("d", "st", examples[:2])
    assert ev.signature() != first
    direct = score_multiple_choice(model, tok, examples[:1], batch_size=3, progress=False).records[0]
    assert ev.query(examples[0]) == pytest.approx(tuple(direct.loglikelihoods))
    assert ev.queries == 1 and ev.computed["score"] == 3 + 3 + 2
    joined = score_multiple_choice(
        model, tok, examples[:1], batch_size=3, progress=False, target_delimiter=""
    )
    bare = ev.query(examples[0], target_delimiter="")  # a span scored right after its prefix
    assert bare == pytest.approx(tuple(joined.records[0].loglikelihoods)) and bare != pytest.approx(
        direct.loglikelihoods
    )


def test_batched_generation_routes_like_one_prompt_at_a_time() -> None:
    model, tok, info = resolve_model("tiny-mixtral", seed=1)  # own copy: the test changes its EOS
    prompts = [("a", "Hello there, how are"), ("b", "Hi"), ("c", "The weather today is quite")]
    n_new = 5
    free = model.generate(
        **tok(["Hi"], return_tensors="pt"),
        generation_config=GenerationConfig(
            max_new_tokens=n_new, do_sample=False, pad_token_id=tok.pad_token_id
        ),
    )
    stop = int(free[0, -n_new + 1])  # "b"'s second new token becomes an EOS: that row must stop early
    model.generation_config.eos_token_id = [tok.eos_token_id, stop]

    ev = ModelEvaluator(name="m", model=model, tokenizer=tok, info=info, gen_batch_size=3)
    texts = ev.generate("safety", "s", prompts, max_new_tokens=n_new)

    for (item_id, prompt), text in zip(prompts, texts):
        enc = tok([prompt], return_tensors="pt")
        with RoutingRecorder(model) as ref:
            out = model.generate(
                **enc,
                generation_config=GenerationConfig(
                    max_new_tokens=n_new,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=[tok.eos_token_id, stop],
                ),
            )
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        cut = next((i for i, t in enumerate(new) if t in (tok.eos_token_id, stop)), len(new))
        assert text == tok.decode(new[:cut], skip_special_tokens=True)
        assert_same_routing(ev.routing_summary("s", [item_id]), ref.summary())
        if item_id == "b":
            assert cut < n_new - 1  # the early EOS did fire: the batch kept running past it for "b"
