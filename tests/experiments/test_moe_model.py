"""The cached SmolLM2 MoE builder (on a tiny stand-in model) and its real-text readers."""

from __future__ import annotations

import pytest
import torch

from adamoe.experiments import moe_model
from adamoe.experiments.moe_model import MoeRecipe, build_default_moe
from adamoe.hf.tiny import tiny_model


def test_recipe_key_is_stable_and_changes_with_every_field():
    base = MoeRecipe()
    assert base.key() == MoeRecipe().key()
    assert base.key() != MoeRecipe(top_k=4).key() != MoeRecipe(seed=1).key()


@pytest.fixture
def tiny_default(monkeypatch):
    """`load_default` → a tiny Llama with SmolLM2's tokenizer (vocab-sized), a few calibration texts."""
    from adamoe.hf import default

    try:
        _, tokenizer = default.load_default()
    except default.DefaultModelMissingError:
        pytest.skip("default model not installed")
    vocab = len(tokenizer)
    calls = []

    def fake_load_default():
        calls.append(1)
        return tiny_model("llama", vocab_size=vocab, pad_token_id=0), tokenizer

    monkeypatch.setattr(default, "load_default", fake_load_default)
    texts = [f"Passage {i}: the river flows past the old mill and the bridge." * 3 for i in range(40)]
    monkeypatch.setattr(moe_model, "calibration_texts", lambda: texts)
    return calls


def test_builds_once_then_loads_the_cached_folder(tmp_path, tiny_default):
    recipe = MoeRecipe(num_experts=4, seq_len=32, max_rows=8)
    first, tok, record = build_default_moe(tmp_path, recipe=recipe, log=lambda _: None)
    second, _, again = build_default_moe(tmp_path, recipe=recipe, log=lambda _: None)
    assert len(tiny_default) == 1  # the second call only loaded
    assert record == again and len(record["agreement_topk"]) == 2
    assert [p.name for p in tmp_path.iterdir()] == [recipe.key()]  # no temporary folder left behind
    ids = tok("the old mill", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(first(ids).logits, second(ids).logits, atol=0, rtol=0)
    assert type(first).__name__ == "Qwen2MoeForCausalLM"


def test_real_text_readers():
    from adamoe.data.sources import DataSourceError

    try:
        moe_model.tarball_path()
    except DataSourceError:
        pytest.skip("BIG-bench tarball not downloaded")
    held = moe_model.heldout_texts(per_task=3)
    assert len(held) == 3 * len(moe_model.HELDOUT_TASKS) and len(set(held)) == len(held)
    assert held == moe_model.heldout_texts(per_task=3)  # stable order


def test_nll_ladder_reaches_the_dense_nll_with_all_experts_at_equal_weight(tiny_default):
    from adamoe.hf import default
    from adamoe.hf.moefy import moefy

    dense, tok = default.load_default()
    texts = ["the river flows past the old mill", "a bridge over water"]
    moe = moefy(dense, calib_tokens=torch.randint(3, 500, (4, 16)), num_experts=4, top_k=2).model
    for layer in moe.model.layers:
        layer.mlp.gate.weight.data.zero_()
    ladder = moe_model.nll_ladder(moe, dense, tok, texts)
    assert set(ladder) == {"dense", "top1", "top2", "top4"}
    assert ladder["dense"] == pytest.approx(moe_model.mean_nll(dense, tok, texts))
    assert ladder["top4"] == pytest.approx(ladder["dense"], abs=1e-4)
    assert ladder["top1"] != pytest.approx(ladder["dense"], abs=1e-3)
