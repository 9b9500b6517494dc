"""moefy: a dense tiny Llama split into a shared core + routed groups in Qwen2-MoE form.

References are independent: the dense model's own logits (with all experts selected at equal weight
the split must be exact), naive per-group loops, and hand-made clusters."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from adamoe.hf.convert import convert, routers
from adamoe.hf.moefy import (
    LayerCalibration,
    balanced_kmeans,
    fit_router,
    group_mass,
    moefy,
    pack_texts,
    set_top_k,
    split_neurons,
    topk_agreement,
)
from adamoe.hf.tiny import tiny_model
from adamoe.utils.seeding import derive_generator

E = 4
CALIB = torch.randint(3, 128, (8, 16), generator=torch.Generator().manual_seed(1))
TOKENS = torch.tensor([[5, 17, 99, 3, 64, 23, 8, 41, 77, 12], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])


@pytest.fixture(scope="module")
def dense():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def built(dense):
    return moefy(dense, calib_tokens=CALIB, num_experts=E, top_k=2, profile_tokens=64)


def logits_of(model) -> torch.Tensor:
    with torch.no_grad():
        return model(TOKENS).logits


def uniform_router(model) -> None:
    for layer in model.model.layers:
        layer.mlp.gate.weight.data.zero_()


def test_all_experts_at_equal_weight_reproduce_the_dense_logits(dense, built):
    moe = copy.deepcopy(built.model)
    uniform_router(moe)
    set_top_k(moe, E)
    torch.testing.assert_close(logits_of(moe), logits_of(dense), atol=2e-5, rtol=0)


def test_top_k_equal_to_e_at_build_time_is_exact_too(dense):
    res = moefy(dense, calib_tokens=CALIB, num_experts=E, top_k=E, profile_tokens=64)
    uniform_router(res.model)
    torch.testing.assert_close(logits_of(res.model), logits_of(dense), atol=2e-5, rtol=0)


def test_the_fitted_router_and_top2_change_the_output(dense, built):
    # Routing must matter: top-2 of 4 groups is not the dense model.
    assert (logits_of(built.model) - logits_of(dense)).abs().max() > 1e-3


def test_groups_partition_the_neurons_in_equal_sizes(dense, built):
    inter = dense.config.intermediate_size
    for shared, groups in zip(built.shared, built.groups):
        assert shared.numel() == inter // 2
        assert groups.shape == (E, inter // 2 // E)
        everything = torch.cat([shared, groups.flatten()])
        assert sorted(everything.tolist()) == list(range(inter))


def test_shared_core_holds_the_most_active_neurons():
    importance = torch.tensor([5.0, 0.1, 3.0, 0.2, 4.0, 0.3, 0.4, 2.0])
    acts = torch.rand(32, 8, generator=torch.Generator().manual_seed(0)).half()
    calib = LayerCalibration(inputs=torch.zeros(32, 2), acts=acts, importance=importance)
    shared, groups = split_neurons(
        calib, num_experts=2, shared_fraction=0.5, profile_tokens=32, generator=derive_generator(0, "kmeans")
    )
    assert shared.tolist() == [0, 2, 4, 7]
    assert sorted(groups.flatten().tolist()) == [1, 3, 5, 6]


def test_balanced_kmeans_recovers_planted_clusters_with_equal_sizes():
    gen = torch.Generator().manual_seed(3)
    centers = torch.eye(4, 16) * 5
    labels_true = torch.arange(4).repeat_interleave(6)
    points = centers[labels_true] + 0.3 * torch.randn(24, 16, generator=gen)
    labels = balanced_kmeans(points, 4, generator=derive_generator(0, "kmeans"))
    assert torch.bincount(labels, minlength=4).tolist() == [6, 6, 6, 6]
    for c in range(4):  # each planted cluster maps to one found cluster
        assert labels[labels_true == c].unique().numel() == 1


def test_balanced_kmeans_caps_sizes_even_when_one_cluster_is_natural():
    points = torch.ones(8, 3) + 0.01 * torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    labels = balanced_kmeans(points, 2, generator=derive_generator(1, "kmeans"))
    assert torch.bincount(labels, minlength=2).tolist() == [4, 4]


def test_group_mass_matches_a_naive_loop():
    acts = torch.randn(5, 6)
    groups = torch.tensor([[0, 3], [1, 5], [2, 4]])
    mass = group_mass(acts, groups)
    for t in range(5):
        for g in range(3):
            expected = sum(abs(float(acts[t, i])) for i in groups[g])
            assert mass[t, g].item() == pytest.approx(expected, rel=1e-5)


def test_fit_router_learns_a_linear_ranking():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 6, generator=gen) * torch.tensor([1.0, 10.0, 0.1, 1.0, 1.0, 1.0])
    true_w = torch.randn(4, 6, generator=gen)
    mass = torch.exp(x @ true_w.T / 3)
    w = fit_router(x, mass)
    assert topk_agreement(x @ w.T, mass, 2) > 0.9
    assert topk_agreement(torch.zeros_like(mass) + torch.arange(4.0), mass, 2) < 0.8


def test_topk_agreement_by_hand():
    mass = torch.tensor([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    logits = torch.tensor([[9.0, 0.0, 8.0, 0.0], [0.0, 0.0, 1.0, 2.0]])
    assert topk_agreement(logits, mass, 2) == pytest.approx((1 / 2 + 1) / 2)


def test_saves_and_loads_with_auto_model(built, tmp_path):
    built.model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded).__name__ == "Qwen2MoeForCausalLM"
    torch.testing.assert_close(logits_of(loaded), logits_of(built.model), atol=0, rtol=0)


def test_converts_with_null_experts_and_a_closed_dial_keeps_the_output(built):
    moe = copy.deepcopy(built.model)
    reference = logits_of(moe)
    convert(moe, null_experts=8, top_k=2)
    out = logits_of(moe)
    assert torch.isfinite(out).all()
    for _, router in routers(moe):
        router.null_bias = -1e4  # nulls never chosen: the converted model is the top-2 MoE again
    torch.testing.assert_close(logits_of(moe), reference, atol=1e-5, rtol=0)


def test_pack_texts_makes_full_rows_joined_by_eos():
    class Tok:
        eos_token_id = 0

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [len(w) for w in text.split()]}

    rows = pack_texts(["a bb ccc", "dddd e"], Tok(), seq_len=3, max_rows=5)
    assert rows.tolist() == [[1, 2, 3], [0, 4, 1]]


def test_bad_arguments_name_the_field(dense):
    with pytest.raises(ValueError, match="shared_fraction"):
        moefy(dense, calib_tokens=CALIB, shared_fraction=1.0)
    with pytest.raises(ValueError, match="top_k"):
        moefy(dense, calib_tokens=CALIB, num_experts=4, top_k=5)
    with pytest.raises(ValueError, match=r"shared_fraction: 0\.99 leaves fewer"):
        moefy(dense, calib_tokens=CALIB, num_experts=4, shared_fraction=0.99)
    with pytest.raises(ValueError, match="tokenizer"):
        moefy(dense, calib_tokens=["some text"])
