"""LoRA injected for ``trainable=lora`` / ``lora+router``: what changes in training is exactly that set.

Reference: a snapshot of every parameter before two optimizer steps, compared name by name after.
"""

from __future__ import annotations

import pytest
import torch

from adamoe.hf.models import ModelSpec
from adamoe.train import TrainConfig, train
from adamoe.train.lora import LoRASettings, apply_lora, merge_lora, needs_lora
from adamoe.train.params import is_lora_param
from tests.train.tiny_setup import arithmetic_pairs


def changed_after_training(model, tok, trainable: str) -> set[str]:
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainConfig(
        lr=5e-2, max_steps=2, batch_size=4, trainable=trainable, progress=False, max_grad_norm=None
    )
    train(model, tok, arithmetic_pairs(8), cfg)
    return {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}


def is_router(name: str) -> bool:
    return ".mlp.gate." in name


def tiny_adamoe():
    return ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)


@pytest.mark.parametrize("trainable", ["lora", "lora+router"])
def test_only_lora_and_the_router_when_asked_change(trainable):
    model, tok, _ = tiny_adamoe()
    assert needs_lora(model, trainable) and not needs_lora(model, "router")
    wrapped = apply_lora(model, LoRASettings(rank=4), seed=0)
    changed = changed_after_training(wrapped, tok, trainable)
    lora_changed = {n for n in changed if is_lora_param(n)}
    base_changed = changed - lora_changed
    # LoRA on the router (gate weight and gate2) and on both fused expert tensors, in both layers
    assert {n.split(".lora_")[0].split(".mlp.")[1] for n in lora_changed} >= {"gate", "experts"}
    if trainable == "lora":
        assert base_changed == set()
    else:
        routers = {n for n, _ in wrapped.named_parameters() if is_router(n) and not is_lora_param(n)}
        assert base_changed == routers and any(n.endswith("gate2") for n in routers) and len(routers) == 4


def test_targets_experts_only_leaves_the_router_untouched():
    model, tok, _ = tiny_adamoe()
    wrapped = apply_lora(model, LoRASettings(rank=4, targets=["experts"]), seed=0)
    changed = changed_after_training(wrapped, tok, "lora")
    assert changed and all(".mlp.experts." in n and is_lora_param(n) for n in changed)


def test_dense_model_gets_lora_on_its_projections_and_merging_is_exact():
    model, tok, _ = ModelSpec.parse("tiny-llama").load(seed=0)
    wrapped = apply_lora(model, LoRASettings(rank=4), seed=0)
    changed = changed_after_training(wrapped, tok, "lora")
    projections = {f"{kind}_proj" for kind in ("q", "k", "v", "o", "gate", "up", "down")}
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in changed} == projections
    ids = torch.tensor([[5, 9, 13, 40, 41]])
    with torch.no_grad():
        adapted = wrapped(ids).logits
        merged = merge_lora(wrapped)
        assert not any(is_lora_param(n) for n, _ in merged.named_parameters())
        torch.testing.assert_close(merged(ids).logits, adapted, rtol=1e-5, atol=1e-5)


def test_lora_starts_at_the_base_model_and_bad_targets_are_one_line():
    model, _, _ = tiny_adamoe()
    ids = torch.tensor([[5, 9, 13, 40]])
    with torch.no_grad():
        base = model(ids).logits.clone()
        torch.testing.assert_close(apply_lora(model, LoRASettings(), seed=1)(ids).logits, base)
    with pytest.raises(ValueError, match=r"targets: expected a subset of \['router', 'experts'\]"):
        LoRASettings(targets=["attention"]).validate()
