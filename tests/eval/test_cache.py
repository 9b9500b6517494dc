"""Score cache: durable appends, crash-cut lines, model identity, and resume without recomputation."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from adamoe.data import load_task
from adamoe.eval.cache import ScoreCache, model_fingerprint
from adamoe.eval.scoring import BatchInfo, score_multiple_choice
from adamoe.hf.tiny import tiny_model


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    corpus = [e.context + " " + " ".join(e.choices) for e in load_task("synthetic-facts", split="validation")]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=120, special_tokens=["<pad>", "<s>", "</s>", "<unk>"])
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )


@pytest.fixture(scope="module")
def model(tokenizer: PreTrainedTokenizerFast) -> torch.nn.Module:
    return tiny_model("llama", seed=3, vocab_size=len(tokenizer))


class Killed(RuntimeError):
    pass


def _count_forwards(model: torch.nn.Module) -> tuple[list[int], object]:
    calls: list[int] = []
    handle = model.register_forward_pre_hook(lambda m, a, k: calls.append(1), with_kwargs=True)
    return calls, handle


def test_put_get_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    cache = ScoreCache(path, model_fingerprint="m1")
    k1 = cache.key(task="t", example_id="a", prompt="p")
    cache.put_many([(k1, {"loglikelihoods": [-1.0, -2.0], "is_greedy": [True, False]})])
    again = ScoreCache(path, model_fingerprint="m1")
    assert len(again) == 1 and k1 in again
    assert again.get(k1)["loglikelihoods"] == [-1.0, -2.0]
    # every part of the identity changes the key
    assert (
        len(
            {
                k1,
                cache.key(task="t2", example_id="a", prompt="p"),
                cache.key(task="t", example_id="b", prompt="p"),
                cache.key(task="t", example_id="a", prompt="q"),
                ScoreCache(path, model_fingerprint="m2").key(task="t", example_id="a", prompt="p"),
            }
        )
        == 5
    )


def test_line_cut_by_a_crash_is_dropped_and_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    cache = ScoreCache(path, model_fingerprint="m")
    cache.put("k1", {"v": 1})
    cache.put("k2", {"v": 2})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])  # the second line lost its tail
    reopened = ScoreCache(path, model_fingerprint="m")
    assert "k1" in reopened and "k2" not in reopened
    assert path.read_bytes() == data.splitlines(keepends=True)[0]
    reopened.put("k3", {"v": 3})
    assert [json.loads(x)["key"] for x in path.read_text().splitlines()] == ["k1", "k3"]


def test_fingerprint_tracks_weights_not_object_identity(model: torch.nn.Module) -> None:
    fp = model_fingerprint(model)
    twin = copy.deepcopy(model)
    assert model_fingerprint(twin) == fp
    with torch.no_grad():
        twin.model.layers[1].mlp.down_proj.weight[3, 5] += 1e-3
    assert model_fingerprint(twin) != fp
    assert model_fingerprint(model, extra="lora-a") != fp


def test_killed_run_resumes_without_recomputing(model, tokenizer, tmp_path: Path) -> None:
    examples = load_task("synthetic-facts", limit=10)
    path = tmp_path / "scores.jsonl"
    clean = score_multiple_choice(model, tokenizer, examples, batch_size=8, progress=False)

    # Die at the start of the 4th forward: the first two batches (prefix + suffix each) are on disk.
    seen = []

    def die(info: BatchInfo) -> None:
        seen.append(info.example_ids)
        if len(seen) == 4:
            raise Killed

    with pytest.raises(Killed):
        score_multiple_choice(
            model, tokenizer, examples, batch_size=8, cache=path, on_batch=die, progress=False
        )
    done = {json.loads(x)["id"] for x in path.read_text().splitlines()}
    assert done == set(seen[0]) and 0 < len(done) < len(examples)

    calls, handle = _count_forwards(model)
    try:
        resumed = score_multiple_choice(model, tokenizer, examples, batch_size=8, cache=path, progress=False)
    finally:
        handle.remove()
    assert resumed.n_cached == len(done)
    assert sum(r.cached for r in resumed.records) == len(done)
    assert len(calls) == resumed.n_forward
    redo = [e for e in examples if e.id not in done]
    fresh_calls, handle = _count_forwards(model)
    try:
        score_multiple_choice(model, tokenizer, redo, batch_size=8, progress=False)
    finally:
        handle.remove()
    assert len(calls) == len(fresh_calls)  # exactly the work of the missing items
    for a, b in zip(clean.records, resumed.records):
        assert a.id == b.id
        assert a.loglikelihoods == pytest.approx(b.loglikelihoods, abs=1e-5)
        assert (a.pred, a.pred_norm) == (b.pred, b.pred_norm)

    # A third run computes nothing at all.
    calls, handle = _count_forwards(model)
    try:
        third = score_multiple_choice(model, tokenizer, examples, cache=path, progress=False)
    finally:
        handle.remove()
    assert calls == [] and third.n_cached == len(examples)


def test_another_model_does_not_reuse_the_cache(model, tokenizer, tmp_path: Path) -> None:
    examples = load_task("synthetic-facts", limit=3)
    path = tmp_path / "scores.jsonl"
    score_multiple_choice(model, tokenizer, examples, cache=path, progress=False)
    other = tiny_model("llama", seed=4, vocab_size=len(tokenizer))
    result = score_multiple_choice(other, tokenizer, examples, cache=path, progress=False)
    assert result.n_cached == 0 and result.n_forward > 0
    assert len(ScoreCache(path, model_fingerprint="x")) == 2 * len(examples)
