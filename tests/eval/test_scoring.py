"""Multiple-choice scorer against independent references.

* a naive loop: one forward per (context, choice) over the full unpadded sequence;
* lm-eval's own HF backend (HFLM) on the same tiny model, for tokenisation and log-likelihoods.

The tiny tokenizer is a 128-token BPE trained here on our generated task text, with a BOS
post-processor, so word-boundary merges and special-token handling are exercised.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from adamoe.data import MCExample, load_task
from adamoe.eval.scoring import BatchInfo, LMEncoder, MCRecord, MCResult, score_multiple_choice
from adamoe.hf.tiny import tiny_model
from tests.eval.examples import partial_mode_examples


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    corpus = [
        e.context + " " + " ".join(e.choices)
        for t in ("synthetic-facts", "synthetic-arith", "synthetic-nli")
        for e in load_task(t, split="validation", limit=100)
    ]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=128, special_tokens=["<pad>", "<s>", "</s>", "<unk>"])
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer: PreTrainedTokenizerFast) -> torch.nn.Module:
    return tiny_model("llama", seed=1, vocab_size=len(tokenizer))


def mixed_examples() -> list[MCExample]:
    """Varied lengths, 2-4 choices, multi-token and single-token choices, partial mode, empty context."""
    return [
        *load_task("synthetic-facts", limit=9),
        *load_task("synthetic-arith", limit=9),
        *load_task("synthetic-nli", limit=5),
        *partial_mode_examples(),
        MCExample(id="e1", context="", choices=["red", "blue thing"], label=1, task="e"),
        MCExample(
            id="s1", context="Answer: ", choices=["yes", "no"], label=0, task="e"
        ),  # trailing space moves
    ]


def naive_loglikelihoods(model, tokenizer, ex: MCExample, max_length: int | None = None) -> list[float]:
    """One forward per choice on the whole sequence; log-prob of each continuation token summed."""
    enc = LMEncoder(tokenizer)
    out = []
    for context, continuation in ex.requests():
        ctx, cont = enc.encode_pair(context, continuation)
        full = ctx + cont
        if max_length is not None:
            full = full[-(max_length + 1) :]
        with torch.no_grad():
            logits = model(torch.tensor([full[:-1]])).logits[0]
        logp = torch.log_softmax(logits.float(), dim=-1)
        start = len(full) - 1 - len(cont)
        out.append(sum(float(logp[start + j, t]) for j, t in enumerate(cont)))
    return out


def _argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


@pytest.mark.parametrize(("mode", "batch_size"), [("prefix", 1), ("prefix", 5), ("prefix", 64), ("full", 3)])
def test_matches_naive_reference(model, tokenizer, mode: str, batch_size: int) -> None:
    examples = mixed_examples()
    result = score_multiple_choice(
        model, tokenizer, examples, batch_size=batch_size, mode=mode, progress=False
    )
    assert [r.id for r in result.records] == [e.id for e in examples]
    for ex, rec in zip(examples, result.records):
        ref = naive_loglikelihoods(model, tokenizer, ex)
        assert rec.loglikelihoods == pytest.approx(ref, abs=1e-4), ex.id
        assert rec.pred == _argmax(ref)
        norm = [ll / n for ll, n in zip(ref, ex.norm_lengths())]
        assert rec.pred_norm == _argmax(norm)
        assert rec.label == ex.label and rec.task == ex.task
    assert result.n_requests == sum(len(e.choices) for e in examples)
    assert result.acc == pytest.approx(sum(r.pred == r.label for r in result.records) / len(examples))


def test_prefix_mode_reuses_the_context(model, tokenizer) -> None:
    """Tokens actually fed to the model: shared contexts once, not once per choice."""
    examples = load_task("synthetic-facts", limit=8)
    fed = {"prefix": 0, "full": 0}
    for mode in fed:

        def count(info: BatchInfo, mode: str = mode) -> None:
            fed[mode] += int(info.input_ids.numel())

        score_multiple_choice(model, tokenizer, examples, mode=mode, on_batch=count, progress=False)
    enc = LMEncoder(tokenizer)
    per_choice = sum(
        sum(map(len, enc.encode_pair(c, t))) - 1 for ex in examples for c, t in ex.requests()
    )  # what lm-eval feeds (unpadded)
    assert fed["prefix"] < 0.6 * per_choice
    assert fed["full"] >= per_choice


@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3"])
def test_moe_families_match_naive_reference(tokenizer, family: str) -> None:
    moe = tiny_model(family, seed=2, vocab_size=len(tokenizer))
    examples = mixed_examples()[::3]
    result = score_multiple_choice(moe, tokenizer, examples, batch_size=6, progress=False)
    for ex, rec in zip(examples, result.records):
        assert rec.loglikelihoods == pytest.approx(naive_loglikelihoods(moe, tokenizer, ex), abs=1e-4), ex.id


def test_matches_lm_eval_hflm_loglikelihoods(model, tokenizer) -> None:
    hf = pytest.importorskip("lm_eval.models.huggingface")
    from lm_eval.api.instance import Instance

    examples = mixed_examples()
    lm = hf.HFLM(pretrained=model, tokenizer=tokenizer, batch_size=7)
    requests = [
        Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
        for ex in examples
        for i, pair in enumerate(ex.requests())
    ]
    theirs = lm.loglikelihood(requests, disable_tqdm=True)
    ours = score_multiple_choice(model, tokenizer, examples, progress=False)
    flat = [(ll, g) for r in ours.records for ll, g in zip(r.loglikelihoods, r.is_greedy)]
    assert [ll for ll, _ in flat] == pytest.approx([ll for ll, _ in theirs], abs=1e-4)
    assert [g for _, g in flat] == [g for _, g in theirs]
    # and the tokenisation itself is lm-eval's
    enc = LMEncoder(tokenizer)
    for ex in examples:
        for context, continuation in ex.requests():
            if context:
                assert enc.encode_pair(context, continuation) == lm._encode_pair(context, continuation)


class _NoCacheLM(torch.nn.Module):
    """A causal LM that never returns a KV cache (some wrappers and remote models behave so)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def forward(self, input_ids, attention_mask=None, **kw):
        out = self.inner(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=kw.get("position_ids")
        )
        out.past_key_values = None
        return out


def test_model_without_kv_cache_falls_back_to_full_sequences(model, tokenizer) -> None:
    examples = mixed_examples()[:8]
    kinds = []
    result = score_multiple_choice(
        _NoCacheLM(model),
        tokenizer,
        examples,
        batch_size=6,
        on_batch=lambda i: kinds.append(i.kind),
        progress=False,
    )
    assert kinds[0] == "prefix" and set(kinds[1:]) == {
        "full"
    }  # one failed attempt, then full mode throughout
    for ex, rec in zip(examples, result.records):
        assert rec.loglikelihoods == pytest.approx(naive_loglikelihoods(model, tokenizer, ex), abs=1e-4)


def test_encoder_empty_context_and_bos_prefixed_strings(tokenizer) -> None:
    enc = LMEncoder(tokenizer)
    bos = tokenizer.bos_token_id
    ctx, cont = enc.encode_pair("", " red")
    assert ctx == [bos] and cont == tokenizer.encode(" red", add_special_tokens=False)
    assert enc.encode("<s> red") == tokenizer.encode("<s> red", add_special_tokens=False)  # no double BOS
    assert enc.encode("red")[0] == bos
    assert LMEncoder(tokenizer, add_bos_token=False).encode("red")[0] != bos


def test_left_truncation_like_lm_eval(model, tokenizer) -> None:
    examples = load_task("synthetic-facts", limit=4)
    kinds: set[str] = set()
    result = score_multiple_choice(
        model, tokenizer, examples, max_length=20, on_batch=lambda i: kinds.add(i.kind), progress=False
    )
    assert kinds == {"full"}  # every item overflows 20 tokens, so it is truncated from the left
    for ex, rec in zip(examples, result.records):
        assert rec.loglikelihoods == pytest.approx(
            naive_loglikelihoods(model, tokenizer, ex, max_length=20), abs=1e-4
        )


def test_on_batch_hook_wraps_every_forward(model, tokenizer) -> None:
    examples = mixed_examples()
    events: list[tuple[str, str, int]] = []

    @contextlib.contextmanager
    def around(info: BatchInfo) -> Iterator[None]:
        events.append(("enter", info.kind, int(info.attention_mask.sum())))
        assert info.input_ids.shape[0] == len(info.example_ids)
        yield
        events.append(("exit", info.kind, 0))

    for mode, kinds in (("prefix", {"prefix", "suffix"}), ("full", {"full"})):
        events.clear()
        calls = []
        handle = model.register_forward_pre_hook(
            lambda m, a, k, calls=calls: calls.append(1), with_kwargs=True
        )
        try:
            result = score_multiple_choice(
                model, tokenizer, examples, batch_size=6, on_batch=around, mode=mode, progress=False
            )
        finally:
            handle.remove()
        assert len(calls) == result.n_forward == len(events) // 2 > 0
        assert [e[0] for e in events] == ["enter", "exit"] * len(calls)
        assert {e[1] for e in events} == kinds


def test_record_build_hand_computed() -> None:
    ex = MCExample(id="h", context="c", choices=["aaaa", "b", "cc"], label=1, task="t")
    rec = MCRecord.build(ex, [-1.6, -1.5, -1.0], [False, False, True])
    assert rec.pred == 2  # -1.0 is the largest
    assert rec.pred_norm == 0  # per character: -1.6/4 = -0.4 beats -1.5/1 and -1.0/2
    assert not rec.correct and not rec.correct_norm
    tie = MCRecord.build(ex, [-1.0, -1.0, -3.0], [False] * 3)
    assert tie.pred == 0  # first maximum, like numpy's argmax
    result = MCResult(records=[rec, tie])
    assert result.acc == 0.0 and result.acc_norm == 0.0
    assert result.by_task() == {"t": {"n": 2, "acc": 0.0, "acc_norm": 0.0}}
    assert math.isnan(MCResult(records=[]).acc)


def test_multi_gold_items_use_the_tasks_own_scoring() -> None:
    """BIG-bench multiple_choice_grade: credit = target_score of the argmax choice, any gold counts."""
    multi = MCExample(id="m", context="c", choices=["a", "bb", "c"], label=0, task="t", scores=(1, 0, 1))
    rec = MCRecord.build(multi, [-3.0, -2.0, -1.0], [False] * 3)  # argmax 2: the second gold
    assert rec.pred == 2 and rec.golds == (0, 2)
    assert rec.correct and rec.credit == 1.0
    assert rec.pred_norm == 1 and not rec.correct_norm and rec.credit_norm == 0.0  # -2/2 beats -3 and -1
    wrong = MCRecord.build(multi, [-3.0, -0.5, -1.0], [False] * 3)
    assert not wrong.correct and wrong.credit == 0.0
    partial = MCExample(id="p", context="c", choices=["a", "b"], label=0, task="t", scores=(1.0, 0.25))
    half = MCRecord.build(partial, [-2.0, -1.0], [False] * 2)
    assert not half.correct and half.credit == 0.25
    result = MCResult(records=[rec, wrong, half])
    # hand computation: (1 + 0 + 0.25) / 3 raw; (0 + 0 + 0.25) / 3 normalised (1-char choices: same argmax)
    assert result.acc == pytest.approx(1.25 / 3) and result.acc_norm == pytest.approx(0.25 / 3)
    assert result.by_task()["t"]["acc"] == pytest.approx(1.25 / 3)
    assert rec.to_dict()["golds"] == [0, 2] and rec.to_dict()["credit"] == 1.0


def test_acc_interval_follows_the_credit() -> None:
    from adamoe.eval.evaluate import acc_interval
    from adamoe.eval.significance import proportion_ci

    multi = MCExample(id="m", context="c", choices=["a", "b", "c"], label=0, task="t", scores=(1, 0, 1))
    recs = [MCRecord.build(multi, lls, [False] * 3) for lls in ([-3, -2, -1], [-3, -1, -2], [-1, -2, -3])]
    assert [r.credit for r in recs] == [1.0, 0.0, 1.0]
    assert acc_interval(MCResult(records=recs), chance=None, purpose="t") == proportion_ci(2, 3).to_dict()
    partial = MCExample(id="p", context="c", choices=["a", "b"], label=0, task="t", scores=(1.0, 0.5))
    half = [MCRecord.build(partial, [-2.0, -1.0], [False] * 2)] * 4 + recs
    ci = acc_interval(MCResult(records=half), chance=None, purpose="t")
    assert ci["value"] == pytest.approx(4.0 / 7) and ci["method"] == "bootstrap"
    assert 0.0 < ci["low"] < ci["value"] < ci["high"] < 1.0


def test_single_gold_scoring_unchanged_by_scores() -> None:
    """One gold given as 0/1 scores scores exactly like the plain label."""
    plain = MCExample(id="a", context="c", choices=["x", "y", "z"], label=1, task="t")
    scored = MCExample(id="a", context="c", choices=["x", "y", "z"], label=1, task="t", scores=(0, 1, 0))
    for lls in ([-1.0, -0.5, -2.0], [-0.1, -0.5, -2.0], [-3.0, -2.0, -1.0]):
        a, b = MCRecord.build(plain, lls, [False] * 3), MCRecord.build(scored, lls, [False] * 3)
        assert (a.correct, a.credit, a.correct_norm) == (b.correct, b.credit, b.correct_norm)
        assert a.correct == (a.pred == 1) and a.credit == float(a.pred == 1)


def test_training_flag_restored_and_inputs_validated(model, tokenizer) -> None:
    model.train()
    try:
        score_multiple_choice(model, tokenizer, load_task("synthetic-nli", limit=2), progress=False)
        assert model.training
    finally:
        model.eval()
    with pytest.raises(ValueError, match="batch_size: expected a positive int"):
        score_multiple_choice(model, tokenizer, [], batch_size=0)
    with pytest.raises(ValueError, match="mode: expected 'prefix' or 'full'"):
        score_multiple_choice(model, tokenizer, [], mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="examples: expected a sequence of MCExample"):
        score_multiple_choice(model, tokenizer, [{"context": "x"}])  # type: ignore[list-item]


@pytest.mark.slow
def test_smollm2_matches_lm_eval_pipeline_per_item(tmp_path) -> None:
    pytest.importorskip("lm_eval")
    from adamoe.eval.lm_eval_compare import agreement, make_hflm, run_lm_eval
    from adamoe.hf.default import load_default

    model, tokenizer = load_default()
    examples = load_task("synthetic-facts", limit=6) + load_task("synthetic-arith", limit=6)
    ours = score_multiple_choice(model, tokenizer, examples, progress=False)
    theirs = run_lm_eval(make_hflm(model, tokenizer), examples, tmp_path)
    report = agreement(ours, theirs)
    assert report["n_items"] == len(examples)
    assert report["max_abs_loglikelihood_diff"] < 1e-3
    assert report["pred_agreement"] == 1.0 and report["pred_norm_agreement"] == 1.0
