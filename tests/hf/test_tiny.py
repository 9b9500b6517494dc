"""Tiny random-config factories: every family builds, runs, is seeded, and is sparse where it can be."""

from __future__ import annotations

import pytest
import torch

from adamoe.hf.tiny import MOE_FAMILIES, TINY_FAMILIES, tiny_config, tiny_model

TOKENS = torch.tensor([[5, 17, 99, 3, 64, 23, 8], [1, 2, 3, 4, 5, 6, 7]])


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_every_family_builds_and_runs_a_forward(family):
    model = tiny_model(family)
    assert model.config.model_type == family
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        logits = model(TOKENS).logits
    assert logits.shape == (2, 7, 128)
    assert torch.isfinite(logits).all()
    assert logits.std() > 0.05  # signals are not vanishingly small (initializer_range 0.1)


@pytest.mark.parametrize("family", MOE_FAMILIES)
def test_every_layer_is_a_four_expert_top2_moe(family):
    model = tiny_model(family)
    assert len(model.model.layers) == 2
    for layer in model.model.layers:
        experts, router = layer.mlp.experts, layer.mlp.gate
        assert experts.gate_up_proj.shape[0] == 4
        assert experts.down_proj.shape[0] == 4
        assert router.weight.shape == (4, 32)
        assert router.top_k == 2
        assert torch.count_nonzero(router.weight) > 0  # random routing, not all ties


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_same_seed_same_weights_other_seed_other_weights(family):
    a, b, c = (tiny_model(family, seed=s).state_dict() for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_global_rng_is_left_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_model("llama", seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_overrides_reach_the_config():
    config = tiny_config("mixtral", num_hidden_layers=3, num_local_experts=6)
    assert (config.num_hidden_layers, config.num_local_experts, config.hidden_size) == (3, 6, 32)
    assert len(tiny_model("llama", num_hidden_layers=3).model.layers) == 3


def test_unknown_family_is_a_one_line_error():
    with pytest.raises(ValueError, match="family") as info:
        tiny_config("gpt2")
    assert "\n" not in str(info.value)
