"""Cached generation: a resumed call generates nothing and returns the same texts and routing sums."""

from __future__ import annotations

import pytest

from adamoe.eval.cache import ScoreCache, model_fingerprint
from adamoe.eval.generation import chat_prompt, generate_texts, left_pad
from adamoe.hf.models import resolve_model


def test_left_pad_by_hand() -> None:
    ids, mask = left_pad([[5, 6, 7], [8]], pad=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_cached_generation_resumes_with_the_same_texts_and_routing(tmp_path) -> None:
    model, tok, _ = resolve_model("tiny-mixtral", seed=0)
    prompts = [("a", "Hello there"), ("b", "Hi"), ("c", "The weather")]
    cache = ScoreCache(tmp_path / "g.jsonl", model_fingerprint=model_fingerprint(model))
    batches: list[list[str]] = []
    kw = {"max_new_tokens": 3, "batch_size": 2, "task": "t", "record_routing": True}
    first = generate_texts(model, tok, prompts, cache=cache, on_batch=batches.append, **kw)
    assert batches == [["a", "b"], ["c"]] and first.n_generated == 3
    assert set(first.entries) == {"a", "b", "c"} and all(e["routing"] for e in first.entries.values())
    again = ScoreCache(tmp_path / "g.jsonl", model_fingerprint=model_fingerprint(model))
    second = generate_texts(model, tok, prompts, cache=again, on_batch=batches.append, **kw)
    assert second.n_generated == 0 and len(batches) == 2 and second.texts == first.texts
    assert {e["task"] for e in second.entries.values()} == {"t"}  # the set an id belongs to (audits)
    assert {i: e["routing"] for i, e in second.entries.items()} == {
        i: e["routing"] for i, e in first.entries.items()
    }
    # another length is another key: generated again
    assert generate_texts(model, tok, prompts[:1], cache=again, max_new_tokens=2, task="t").n_generated == 1


def test_bad_settings_are_one_line_errors() -> None:
    model, tok, _ = resolve_model("tiny-mixtral", seed=0)
    with pytest.raises(ValueError, match="max_new_tokens: expected a positive int"):
        generate_texts(model, tok, [("a", "x")], max_new_tokens=0)
    with pytest.raises(ValueError, match="leaves no room"):
        generate_texts(model, tok, [("a", "x")], max_new_tokens=10**6)
    assert chat_prompt(tok, "x", chat=False) == "x"
    if not getattr(tok, "chat_template", None):
        with pytest.raises(ValueError, match="no chat template"):
            chat_prompt(tok, "x", chat=True)
