"""Trainable-set selection: LoRA, router, full, adapters, freeze_router."""

from __future__ import annotations

import pytest

from adamoe.hf.tiny import tiny_model
from adamoe.train.params import (
    freeze_all_but_last_layers,
    is_router_param,
    layer_index,
    param_groups,
    select_trainable,
)

from .tiny_setup import tiny_moe_lm


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.layers.0.mlp.gate.weight", True),
        ("model.layers.0.mlp.gate2.weight", True),
        ("model.layers.0.mlp.router.weight", True),
        ("model.layers.0.self_attn.q_proj.router.weight", True),
        ("model.layers.0.mlp.experts.gate_up_proj", False),
        ("model.layers.0.mlp.gate_proj.weight", False),
        ("model.layers.0.mlp.shared_expert_gate.weight", False),
        ("model.layers.0.self_attn.q_proj.weight", False),
    ],
)
def test_router_names(name: str, expected: bool) -> None:
    assert is_router_param(name) is expected


def trainable_names(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_router_set_on_mixtral_is_exactly_the_gates() -> None:
    model = tiny_model("mixtral")
    names = select_trainable(model, "router")
    assert names == [f"model.layers.{i}.mlp.gate.weight" for i in range(2)]
    assert trainable_names(model) == set(names)


def test_full_then_freeze_router() -> None:
    model = tiny_model("mixtral")
    names = select_trainable(model, "full", freeze_router=True)
    all_names = {n for n, _ in model.named_parameters()}
    assert set(names) == all_names - {f"model.layers.{i}.mlp.gate.weight" for i in range(2)}
    assert trainable_names(model) == set(names)


def test_lora_sets_and_missing_lora() -> None:
    model = tiny_moe_lm(lora_rank=2)
    lora = select_trainable(model, "lora")
    assert lora and all(".lora_" in n for n in lora)
    both = select_trainable(model, "lora+router")
    assert set(both) == set(lora) | {f"model.layers.{i}.mlp.router.weight" for i in range(2)}
    with pytest.raises(ValueError, match=r"^trainable: 'lora' but the model has no lora_"):
        select_trainable(tiny_model("llama"), "lora")


def test_adapters_keeps_what_already_requires_grad() -> None:
    model = tiny_model("llama")
    for name, p in model.named_parameters():
        p.requires_grad_("layers.1." in name)
    names = select_trainable(model, "adapters")
    assert names and all("layers.1." in n for n in names)


def test_empty_selection_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^trainable: the set 'router'.*selects no parameter"):
        select_trainable(tiny_model("mixtral"), "router", freeze_router=True)


def test_weight_decay_only_on_matrices() -> None:
    model = tiny_model("llama")
    names = select_trainable(model, "full")
    groups = param_groups(model, names, weight_decay=0.1)
    assert all(p.ndim >= 2 for p in groups[0]["params"]) and groups[0]["weight_decay"] == 0.1
    assert all(p.ndim == 1 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(names)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.layers.12.mlp.gate.weight", 12),
        ("model.embed_tokens.weight", None),
        ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight", 0),
        ("lm_head.weight", None),
    ],
)
def test_layer_index(name: str, expected) -> None:
    assert layer_index(name) == expected


def test_freeze_all_but_last_layers_keeps_only_the_last_layers_and_the_rest_untouched() -> None:
    model = tiny_model("mixtral", num_hidden_layers=3)
    select_trainable(model, "full")
    frozen = freeze_all_but_last_layers(model, 1)
    for name, param in model.named_parameters():
        in_early_layer = name.startswith(("model.layers.0.", "model.layers.1."))
        assert param.requires_grad is not in_early_layer, name
        assert (name in frozen) is in_early_layer
    assert freeze_all_but_last_layers(model, 0) == []
