"""RoutedHFLM: lm-eval's results unchanged, routing counted over exactly the non-padding tokens fed."""

from __future__ import annotations

from typing import Any

import pytest
import torch

pytest.importorskip("lm_eval")

from lm_eval import simple_evaluate
from lm_eval.api.registry import get_model
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from adamoe.data.synthetic import generate_synthetic
from adamoe.eval.lm_eval_compare import write_lm_eval_tasks
from adamoe.eval.lm_eval_model import RoutedHFLM, evaluate_with_routing, infer_baseline_k
from adamoe.hf.convert import routers
from adamoe.hf.models import resolve_model
from adamoe.stats import RoutingRecorder

K = 3  # tiny-mixtral-adamoe: 4 experts, 8 nulls, top-3 (base top-2)


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], TaskManager]:
    folder = tmp_path_factory.mktemp("lm_eval_tasks")
    names = write_lm_eval_tasks(generate_synthetic("synthetic-arith", "test", limit=8), folder)
    return names, TaskManager(include_path=str(folder), include_defaults=False)


@pytest.fixture(scope="module")
def adamoe_model() -> tuple[Any, Any]:
    model, tok, _ = resolve_model("tiny-mixtral-adamoe")
    # "copy"-initialised nulls tie with their true twins, so every token would use exactly one true
    # expert; nudge them so the load varies per token and a miscount shows.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, router in routers(model):
            router.gate2.add_(torch.randn(router.gate2.shape, generator=gen) * router.weight.std())
    return model, tok


class _SpyHFLM(HFLM):
    """Plain lm-eval backend that notes the requests it gets and how many (padded) positions it feeds."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: list[tuple[Any, list[int], list[int]]] = []
        self.fed_positions = 0

    def _loglikelihood_tokens(self, requests, disable_tqdm=False, override_bs=None):
        self.requests.extend(requests)
        return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)

    def _model_call(self, inps, attn_mask=None, labels=None):
        self.fed_positions += inps.numel()
        return super()._model_call(inps, attn_mask=attn_mask, labels=labels)


def test_results_unchanged_and_routing_matches_unpadded_reference(tasks, adamoe_model) -> None:
    names, manager = tasks
    model, tok = adamoe_model
    spy = _SpyHFLM(pretrained=model, tokenizer=tok, batch_size=8)
    plain = simple_evaluate(model=spy, tasks=names, task_manager=manager, bootstrap_iters=0)
    ours = evaluate_with_routing(model, names, tokenizer=tok, task_manager=manager, bootstrap_iters=0)

    for name in names:
        for metric in ("acc,none", "acc_norm,none"):
            assert ours["results"][name][metric] == plain["results"][name][metric]
    routing = ours["routing"][names[0]]

    # Reference: what lm-eval feeds is ctx + cont[:-1], once per distinct sequence (its logits cache);
    # run each alone, unpadded, through an independent recorder.
    fed = {tuple((ctx + cont)[:-1]) for _, ctx, cont in spy.requests}
    real_tokens = sum(len(seq) for seq in fed)
    assert spy.fed_positions > real_tokens  # batches were padded, so the mask matters
    reference = RoutingRecorder(model, baseline_k=2)
    with reference, torch.no_grad():
        for seq in fed:
            model(torch.tensor([seq]))
    expected = reference.summary()

    assert routing["tokens"] == real_tokens
    assert set(routing["layers"]) == set(expected["layers"]) and len(routing["layers"]) == 2
    for name, layer in routing["layers"].items():
        assert layer["tokens"] == real_tokens
        assert layer["expert_counts"] == expected["layers"][name]["expert_counts"]
        assert layer["load"] == pytest.approx(expected["layers"][name]["load"])
    assert 0.0 < routing["load"] < K
    assert routing["load"] == pytest.approx(expected["load"])
    assert routing["flops_pct"] == pytest.approx(100.0 * expected["load"] / 2)
    assert routing["expert_flops_pct"] == pytest.approx(100.0 * expected["load"] / 2)
    # whole-model FLOPs: attention, LM head and router dilute the expert saving
    assert routing["expert_flops_pct"] < routing["model_flops_pct"] < 100.0 or routing["load"] >= 2
    assert routing["entropy"] == pytest.approx(expected["entropy"], rel=1e-5)


def test_unscored_forward_is_not_counted(adamoe_model) -> None:
    # lm-eval's batch-size probing calls _model_call without scoring any row: nothing is recorded.
    model, tok = adamoe_model
    lm = RoutedHFLM(model, tok, batch_size=2)
    lm._model_call(torch.ones(2, 5, dtype=torch.long))
    assert lm.routing_summary()["layers"] == {}


def test_generation_counts_prompt_and_live_decoding_only(adamoe_model) -> None:
    model, tok = adamoe_model
    lm = RoutedHFLM(model, tok, batch_size=3)
    ctx, attn = lm.tok_batch_encode(["Question: what is 2 + 2?", "Hi", "Tell me a story about a dog"])
    first = lm._model_generate(ctx, attention_mask=attn, max_length=ctx.shape[1] + 5, stop=["\n\n"])
    # Make the token row 1 generates first its EOS, so that row finishes at once and is fed EOS/pad after.
    eos = int(first[1, ctx.shape[1]])
    lm.reset_routing()
    out = lm._model_generate(
        ctx, attention_mask=attn, max_length=ctx.shape[1] + 5, stop=["\n\n"], eos_token_id=eos
    )
    got = lm.routing_summary()

    generated = out[:, ctx.shape[1] :]
    ended = {eos, tok.pad_token_id, tok.eos_token_id}
    reference = RoutingRecorder(model, baseline_k=2)
    real_tokens = 0
    with reference, torch.no_grad():
        for row in range(ctx.shape[0]):
            gen = generated[row].tolist()
            stop = next((j for j, t in enumerate(gen) if t in ended), len(gen))
            seq = ctx[row][attn[row].bool()].tolist() + gen[: min(stop, len(gen) - 1)]
            real_tokens += len(seq)
            model(torch.tensor([seq]))
    expected = reference.summary()
    assert int(attn.sum()) < real_tokens < out.numel()  # decoding counted, padding and finished rows not
    assert got["tokens"] == real_tokens
    for name, layer in got["layers"].items():
        assert layer["expert_counts"] == expected["layers"][name]["expert_counts"]


def test_dense_model_gets_empty_routing(tasks) -> None:
    names, manager = tasks
    out = evaluate_with_routing("tiny-llama", names, task_manager=manager, bootstrap_iters=0)
    assert out["routing"] == {names[0]: {}}
    assert 0.0 <= out["results"][names[0]]["acc,none"] <= 1.0


def test_registered_and_built_from_spec() -> None:
    assert get_model("adamoe") is RoutedHFLM
    lm = RoutedHFLM.create_from_arg_string("pretrained=tiny-mixtral-adamoe,batch_size=4")
    assert lm.baseline_k == 2 == infer_baseline_k(lm.model)
    assert lm.recorder is not None and lm.batch_size == 4
    with pytest.raises(ValueError, match="tokenizer"):
        RoutedHFLM(lm.model)
