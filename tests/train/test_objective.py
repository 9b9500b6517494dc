"""The multiple-choice objective against a naive reference: each choice's log-likelihood from its own
unpadded forward and a plain loop over its tokens, the cross-entropy over choices by hand (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from adamoe.data import MCExample
from adamoe.train import TrainConfig, train
from adamoe.train.data import collate_mc, encode_mc, mc_requests
from adamoe.train.objective import get_objective

from .tiny_setup import arithmetic_pairs, char_tokenizer, tiny_moe_lm

TOK = char_tokenizer()
EXAMPLES = [
    MCExample(id="a", context="2+2=", choices=["4", "5", "22"], label=0, task="t"),
    MCExample(id="b", context="Sky is", choices=["blue", "green"], label=1, task="t"),
    MCExample(
        id="c", context="The cat sat on ", choices=["mat", "sun"], label=0, task="t", continuation="it"
    ),
    MCExample(id="d", context="7+1=", choices=["8", "9", "71", "0"], label=2, task="t"),
]


def naive_choice_logprob(model: torch.nn.Module, prompt: str, target: str) -> float:
    """sum_t log p(target token t | everything before it), one unpadded forward, a loop over positions."""
    ids = TOK(prompt + target)["input_ids"]
    n_prompt = len(TOK(prompt)["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    total = 0.0
    for pos in range(n_prompt, len(ids)):
        row = logits[pos - 1]
        total += float(row[ids[pos]]) - math.log(sum(math.exp(float(x)) for x in row))
    return total


def naive_item_loss(model: torch.nn.Module, ex: MCExample) -> float:
    """-log softmax(choice scores)[gold] by hand."""
    scores = [naive_choice_logprob(model, p, t) for p, t in ex.requests()]
    return -(scores[ex.label] - math.log(sum(math.exp(s) for s in scores)))


def mc_loss_sum(model: torch.nn.Module, examples: list[MCExample]) -> torch.Tensor:
    batch = collate_mc(encode_mc(TOK, mc_requests(examples), max_length=64), pad_id=0)
    return get_objective("mc").loss_sum(model, batch)


def test_mc_loss_matches_the_naive_per_choice_reference() -> None:
    model = tiny_moe_lm().eval()
    with torch.no_grad():
        got = float(mc_loss_sum(model, EXAMPLES))  # 2-4 choices, padded rows, a partial-mode item
    want = sum(naive_item_loss(model, ex) for ex in EXAMPLES)
    assert got == pytest.approx(want, abs=1e-4)


def test_the_loop_logs_the_item_mean_and_still_adds_the_aux_loss() -> None:
    reference = tiny_moe_lm().eval()
    want = sum(naive_item_loss(reference, ex) for ex in EXAMPLES) / len(EXAMPLES)
    cfg = TrainConfig(
        objective="mc", lr=1e-3, batch_size=2, grad_accum=2, max_steps=1, aux_coef=0.5, progress=False
    )
    record = train(tiny_moe_lm(), TOK, EXAMPLES, cfg).history[0]
    assert "lm_loss" not in record and record["items"] == len(EXAMPLES)
    assert record["mc_loss"] == pytest.approx(want, abs=1e-4)
    assert record["aux_loss"] > 0
    assert record["loss"] == pytest.approx(record["mc_loss"] + 0.5 * record["aux_loss"])


def test_one_mc_step_raises_the_gold_choices_relative_log_prob() -> None:
    toy = [MCExample(id="x", context="3+4=", choices=["9", "7"], label=1, task="t")]
    model = tiny_moe_lm()
    before = -naive_item_loss(model.eval(), toy[0])
    cfg = TrainConfig(objective="mc", lr=1e-3, batch_size=1, max_steps=1, aux_coef=0.0, progress=False)
    train(model, TOK, toy, cfg)
    after = -naive_item_loss(model.eval(), toy[0])
    assert after > before + 1e-3


def test_mc_needs_multiple_choice_examples() -> None:
    cfg = TrainConfig(objective="mc", batch_size=2, max_steps=1, progress=False)
    with pytest.raises(ValueError, match=r"^objective: 'mc' trains on multiple-choice examples") as err:
        train(tiny_moe_lm(), TOK, arithmetic_pairs(4), cfg)
    assert "\n" not in str(err.value)
