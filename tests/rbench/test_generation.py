"""Batched, padded greedy generation routes like one prompt at a time (the `transformers` reference)."""

from __future__ import annotations

import pytest
from transformers import GenerationConfig

from adamoe.hf.models import resolve_model
from adamoe.rbench.evaluator import ModelEvaluator
from adamoe.stats import RoutingRecorder
from tests.rbench.helpers import assert_same_routing

pytestmark = pytest.mark.usefixtures("one_thread")


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
