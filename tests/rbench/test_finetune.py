"""The suite's fine-tuning stage: one recipe for every model, real training, cached by a fingerprint.

References: a fresh copy of the untrained model (what must and must not change), the trained model held
in memory (what a cached rerun must restore bit for bit), and decoder-layer indices parsed from the
parameter names by hand (the trainable set).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
import torch

from adamoe.rbench.config import RBenchConfig
from adamoe.rbench.finetune import FinetuneConfig, finetune_key, finetune_model, load_train_items
from adamoe.rbench.models import load_model
from adamoe.rbench.runner import prepare_suite, run_suite
from adamoe.train.cached import mark_trainable

pytestmark = pytest.mark.usefixtures("one_thread", "offline_wheel")

CFG = FinetuneConfig(per_task=4, max_steps=2, batch_size=4, lr=1e-3, train_last_layers=1)


def _expected_trainable(model: Any, last: int) -> set[str]:
    """Every parameter of the last `last` decoder layers, plus the non-layer ones except the embedding."""
    n_layers = int(model.config.num_hidden_layers)
    out = set()
    for name, _ in model.named_parameters():
        m = re.search(r"\.layers\.(\d+)\.", name)
        if m is not None:
            if int(m.group(1)) >= n_layers - last:
                out.add(name)
        elif "embed_tokens" not in name:
            out.add(name)
    return out


@pytest.mark.parametrize("spec", ["tiny-llama", "tiny-mixtral"])
def test_the_trainable_set_is_the_same_rule_for_dense_and_moe(spec: str) -> None:
    model, _, _ = load_model(spec, seed=0)
    names = set(mark_trainable(model, CFG.trainable, CFG.train_last_layers))
    assert names == _expected_trainable(model, 1)
    if spec == "tiny-mixtral":
        assert any("gate" in n and "proj" not in n for n in names)  # the router trains too


def test_finetuning_changes_only_the_trainable_set_and_a_rerun_restores_it_from_the_cache(tmp_path) -> None:
    items = load_train_items(CFG)
    assert len(items) == 4 * len(CFG.tasks) and all(len(ex.choices) >= 2 for ex in items)
    model, tok, _ = load_model("tiny-mixtral", seed=0)
    fresh = {n: p.detach().clone() for n, p in model.named_parameters()}
    trained_calls: list[int] = []
    folder = tmp_path / "ft" / "tiny-mixtral"
    rec = finetune_model(
        model, tok, CFG, items=items, seed=0, folder=folder, on_train=lambda: trained_calls.append(1)
    )
    assert rec["cached"] is False and rec["steps"] == 2 and trained_calls == [1]
    assert not any(p.requires_grad for p in model.parameters())  # evaluation only from here on
    trainable = _expected_trainable(model, 1)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, fresh[n])}
    assert changed and changed <= trainable
    assert any(".layers.1." in n for n in changed)

    again, tok2, _ = load_model("tiny-mixtral", seed=0)
    rec2 = finetune_model(
        again, tok2, CFG, items=items, seed=0, folder=folder, on_train=lambda: trained_calls.append(2)
    )
    assert rec2["cached"] is True and trained_calls == [1] and rec2["key"] == rec["key"]
    want = dict(model.named_parameters())
    assert all(torch.equal(p, want[n]) for n, p in again.named_parameters())

    other = replace(CFG, lr=2e-3)  # another recipe: another key, trained afresh
    third, tok3, _ = load_model("tiny-mixtral", seed=0)
    rec3 = finetune_model(
        third, tok3, other, items=items, seed=0, folder=folder, on_train=lambda: trained_calls.append(3)
    )
    assert rec3["cached"] is False and trained_calls == [1, 3] and rec3["key"] != rec["key"]


def test_training_items_come_from_the_train_parts_never_the_evaluated_test_parts() -> None:
    from adamoe.data import load_task
    from adamoe.data.spans import load_span_task, span_to_mc

    cfg = FinetuneConfig(tasks=["rte", "sst2"], per_task=1000)
    prompts = {ex.context for ex in load_train_items(cfg)}
    for task in cfg.tasks:
        train = {ex.context for ex in load_task(task, split="train")}
        test = {span_to_mc(it).context for it in load_span_task(task, split="test")}
        assert train and train <= prompts and not test & prompts


def test_every_model_of_the_suite_is_finetuned_once_and_a_rerun_loads_them(tmp_path) -> None:
    cfg = RBenchConfig.from_dict(
        {
            "models": ["tiny-llama", "tiny-mixtral"],
            "dims": ["ood"],
            "limit": 2,
            "progress": False,
            "quick": True,
            "ood": {"shifts": ["upper"]},
        }
    )
    plan = prepare_suite(cfg)
    calls: list[Any] = []
    first = run_suite(plan, cache_root=tmp_path, on_call=calls.append)
    trains = [c.model for c in calls if c.kind == "train"]
    assert trains == ["tiny-llama", "tiny-mixtral"]
    recipes = [first["results"][m]["finetune"]["recipe"] for m in trains]
    assert recipes[0] == recipes[1] == cfg.finetune.recipe()  # the same recipe and budget for both
    calls.clear()
    second = run_suite(plan, cache_root=tmp_path, on_call=calls.append)
    assert calls == []  # nothing trained, nothing scored again: the fine-tuned weights and scores are cached
    assert all(second["results"][m]["finetune"]["cached"] for m in trains)
    for m in trains:
        assert second["results"][m]["dims"]["ood"]["metrics"] == first["results"][m]["dims"]["ood"]["metrics"]


def test_finetune_can_be_switched_off() -> None:
    cfg = RBenchConfig.from_dict(
        {"models": ["tiny-llama"], "dims": ["ood"], "limit": 2, "progress": False, "quick": True}
    )
    cfg.finetune.enabled = False
    plan = prepare_suite(cfg)
    assert plan.train_items == []
    assert run_suite(plan, cache_root=None)["results"]["tiny-llama"]["finetune"] is None


def test_labels_are_balanced_per_task_and_switching_it_off_takes_the_hash_order() -> None:
    from collections import Counter

    from adamoe.data import load_task

    part = load_task("sst2", split="train")
    fewest = min(Counter(ex.label for ex in part).values())  # the rarer label's count in the train part
    # an even size whose hash-order prefix is skewed, so balancing has something to fix
    n = next(n for n in range(2, 2 * fewest + 1, 2) if sum(e.label == 0 for e in part[:n]) != n // 2)
    balanced = load_train_items(FinetuneConfig(tasks=["sst2"], per_task=n))
    assert Counter(ex.label for ex in balanced) == {0: n // 2, 1: n // 2}
    plain = load_train_items(FinetuneConfig(tasks=["sst2"], per_task=n, balance_labels=False))
    assert [ex.id for ex in plain] == [ex.id for ex in part[:n]]


def test_the_cache_key_changes_with_the_objective_and_the_schedule() -> None:
    items = load_train_items(replace(CFG, tasks=["rte"]))
    key = finetune_key(CFG, seed=0, items=items, base="b")
    assert CFG.objective == "mc" and key == finetune_key(replace(CFG), seed=0, items=items, base="b")
    for change in (
        {"objective": "lm"},
        {"warmup": 0.0},
        {"lr_scheduler": "constant"},
        {"balance_labels": False},
    ):
        assert finetune_key(replace(CFG, **change), seed=0, items=items, base="b") != key, change
    assert finetune_key(CFG, seed=0, items=items[:-1], base="b") != key


def test_a_bad_objective_is_one_line_naming_the_field_the_choices_and_the_fix() -> None:
    with pytest.raises(ValueError) as err:
        RBenchConfig.from_dict({"models": ["tiny-llama"], "finetune": {"objective": "ce"}})
    assert str(err.value) == (
        "finetune.objective: expected one of lm, mc, got 'ce' "
        "(--set finetune.objective=lm or --set finetune.objective=mc)"
    )
