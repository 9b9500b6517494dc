"""Per-token true-expert counts and their pairing with the next-token NLL, on a tiny converted MoE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adamoe.eval.dial import null_bias
from adamoe.experiments.moe_model import text_nlls
from adamoe.experiments.token_routing import count_histogram, token_routing
from adamoe.hf.convert import convert
from adamoe.hf.tiny import tiny_model
from tests.train.tiny_setup import char_tokenizer


def test_histogram_counts_by_hand():
    counts = np.array([[0, 1], [2, 2], [1, 3]])
    assert count_histogram(counts, k=3) == pytest.approx([1 / 6, 2 / 6, 2 / 6, 1 / 6])
    with pytest.raises(ValueError, match="counts"):
        count_histogram(np.array([[4]]), k=3)


@pytest.fixture(scope="module")
def ada():
    model = tiny_model("qwen2_moe")
    convert(model, null_experts=4, top_k=3, gate2_init="copy_jitter", seed=0)
    return model.eval(), char_tokenizer()


TEXTS = ["the river flows past the mill", "a cat sat on the warm red mat today"]


def test_the_null_dial_moves_every_token_to_all_or_no_true_experts(ada):
    model, tok = ada
    with null_bias(model, 1e4):
        none = token_routing(model, tok, TEXTS, k=3)
    with null_bias(model, -1e4):
        full = token_routing(model, tok, TEXTS, k=3)
    assert none["histogram"] == [1.0, 0.0, 0.0, 0.0] and full["histogram"] == [0.0, 0.0, 0.0, 1.0]
    assert np.isnan(full["spearman"])  # a constant count has no rank correlation


def test_tokens_and_nll_pair_with_text_nlls(ada):
    model, tok = ada
    out = token_routing(model, tok, TEXTS, k=3)
    ref = text_nlls(model, tok, TEXTS)
    assert out["tokens"] == sum(ref["tokens"])
    pooled = sum(v * n for v, n in zip(out["nll_by_count"].values(), _group_sizes(model, tok)))
    assert pooled == pytest.approx(sum(ref["nll"]), rel=1e-5)
    assert sum(out["histogram"]) == pytest.approx(1.0) and 0 <= out["mean_count"] <= 3


def _group_sizes(model, tok) -> list[int]:
    """Tokens per rounded layer-mean count, recomputed from the recorder directly."""
    from adamoe.stats import RoutingRecorder

    per_token = []
    for text in TEXTS:
        ids = tok(text, return_tensors="pt")["input_ids"]
        with RoutingRecorder(model, keep_tokens=True) as rec, torch.no_grad():
            model(input_ids=ids, use_cache=False)
        c = np.stack([s.per_token_load for s in rec.layers.values()], axis=1)[:-1]
        per_token.append(c.mean(axis=1))
    _, sizes = np.unique(np.rint(np.concatenate(per_token)).astype(int), return_counts=True)
    return sizes.tolist()
