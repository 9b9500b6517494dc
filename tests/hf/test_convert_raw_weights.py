"""Raw-weight families (Qwen2-MoE ``norm_topk_prob=False``, DeepSeek-V2) keep their output scale with nulls.

Softmax over E+m experts gives every true expert a smaller probability than softmax over E, so raw
weights would shrink the routed output (0.355 instead of 0.710 at top-2). The rule under test: each
token's true-expert weights sum to what the unconverted router gives the same token.
"""

from __future__ import annotations

import copy

import pytest
import torch

from adamoe.hf.convert import convert
from adamoe.hf.tiny import tiny_model

E, K = 4, 2  # the tiny MoE families
RAW = [
    ("qwen2_moe", {}),
    ("deepseek_v2", {"routed_scaling_factor": 2.0}),
    ("deepseek_v2", {"topk_method": "group_limited_greedy", "n_group": 2, "topk_group": 1}),
]


def original_weight_sums(gate: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """(T,) sum of the unconverted router's top-k weights per token (independent of our code)."""
    _, weights, _ = gate(hidden)
    return weights.float().sum(dim=-1)


@pytest.mark.parametrize(("family", "overrides"), RAW, ids=lambda v: str(v))
@torch.no_grad()
def test_true_weights_keep_the_original_per_token_sum(family, overrides):
    model = tiny_model(family, **overrides)
    original_gate = copy.deepcopy(model.model.layers[0].mlp.gate)
    convert(model, null_experts=4, top_k=3, gate2_init="copy_jitter", seed=1)
    gate = model.model.layers[0].mlp.gate
    assert gate.normalize == 0  # the family's own rule: raw weights
    hidden = 3.0 * torch.randn(256, 32)
    want = original_weight_sums(original_gate, hidden)
    _, weights, idx = gate(hidden)
    true = idx < E
    got = (weights.float() * true).sum(dim=-1)
    some_true = true.any(dim=-1)
    assert some_true.float().mean() > 0.9 and (idx >= E).any()  # nulls are picked, few tokens bypass
    torch.testing.assert_close(got[some_true], want[some_true], atol=1e-5, rtol=1e-5)
    assert float(got.mean()) == pytest.approx(float(want.mean()), rel=0.1)
    # what raw probabilities over E+m would have given: visibly smaller (the bug this rule fixes)
    probs = gate.last_routing.probs
    shrunk = (probs.gather(1, idx) * true).sum(dim=-1) * gate.routed_scaling_factor
    assert float(shrunk.mean()) < 0.8 * float(want.mean())


@torch.no_grad()
def test_m0_and_sigmoid_scores_stay_raw():
    """m = 0 keeps the family's raw weights bit for bit; sigmoid scores are not diluted by nulls."""
    model = tiny_model("qwen2_moe")
    original_gate = copy.deepcopy(model.model.layers[0].mlp.gate)
    convert(model, null_experts=0)
    hidden = torch.randn(64, 32)
    assert torch.equal(model.model.layers[0].mlp.gate(hidden)[1], original_gate(hidden)[1])

    model = tiny_model("deepseek_v3", norm_topk_prob=False)
    convert(model, null_experts=2, top_k=3, gate2_init="random")
    gate = model.model.layers[0].mlp.gate
    _, weights, idx = gate(hidden)
    scores = gate.last_routing.logits.sigmoid().gather(1, idx) * (idx < E)
    torch.testing.assert_close(weights.float(), scores * gate.routed_scaling_factor)
