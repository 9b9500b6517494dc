"""Which parameters a run trains (LoRA, router, full, already-marked adapters) and their weight decay."""

from __future__ import annotations

import re

import torch
from torch import nn

from adamoe.train.config import TRAINABLE_SETS

# A name component that is a router: HF MoE blocks call it `gate` (AdaMoE's extension adds `gate2`);
# adamoe and Mo-LoRA call it `router`. `gate_proj` / `gate_up_proj` are MLP weights and do not match.
_ROUTER_COMPONENT = re.compile(r"gate\d*|.*router.*")


def is_router_param(name: str) -> bool:
    """Whether parameter ``name`` belongs to a router (a dotted component names one)."""
    return any(_ROUTER_COMPONENT.fullmatch(part) for part in name.split("."))


def is_lora_param(name: str) -> bool:
    """Whether parameter ``name`` is a LoRA A/B weight."""
    return any(part.startswith("lora_") for part in name.split("."))


def select_trainable(model: nn.Module, trainable: str, *, freeze_router: bool = False) -> list[str]:
    """Set ``requires_grad`` for the chosen set and return the trainable names (named_parameters order)."""
    if trainable not in TRAINABLE_SETS:
        raise ValueError(f"trainable: expected one of {TRAINABLE_SETS}, got {trainable!r}")
    named = list(model.named_parameters())
    if trainable == "adapters":
        chosen = {n for n, p in named if p.requires_grad}
    elif trainable == "full":
        chosen = {n for n, _ in named}
    elif trainable == "router":
        chosen = {n for n, _ in named if is_router_param(n)}
    else:
        chosen = {n for n, _ in named if is_lora_param(n)}
        if not chosen:
            raise ValueError(
                f"trainable: {trainable!r} but the model has no lora_* parameters (inject LoRA first)"
            )
        if trainable == "lora+router":
            chosen |= {n for n, _ in named if is_router_param(n)}
    if freeze_router:
        chosen = {n for n in chosen if not is_router_param(n)}
    for name, param in named:
        param.requires_grad_(name in chosen)
    names = [n for n, _ in named if n in chosen]
    if not names:
        raise ValueError(
            f"trainable: the set {trainable!r} (freeze_router={freeze_router}) selects no parameter of this model"
        )
    return names


def param_groups(model: nn.Module, names: list[str], *, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on matrices, none on vectors (norms, biases), a common convention."""
    wanted = set(names)
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if name in wanted:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def layer_index(name: str) -> int | None:
    """The decoder layer a parameter belongs to (the number after a ``layers`` component), else None."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part == "layers" and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def freeze_all_but_last_layers(model: nn.Module, last: int) -> list[str]:
    """Freeze every parameter of decoder layers before the last `last` ones; return the frozen names.

    Parameters outside the decoder layers (embeddings, final norm, LM head) keep their flag. Backward then
    stops at the first trainable layer, which is what keeps CPU fine-tuning of a 30-layer model to
    minutes. ``last <= 0`` changes nothing. Call after :func:`select_trainable`.
    """
    if last <= 0:
        return []
    num_layers = int(model.config.num_hidden_layers)
    frozen = []
    for name, param in model.named_parameters():
        idx = layer_index(name)
        if idx is not None and idx < num_layers - last:
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def train_last_layers(model: nn.Module, trainable: str, last: int) -> None:
    """:func:`select_trainable` ``trainable``, then only the last ``last`` decoder layers (and what follows
    them); when layers are frozen the input embedding is frozen too, because a tied embedding (SmolLM2's
    is the LM head) would pull backward down to layer 0 and undo the saving."""
    select_trainable(model, trainable)
    if freeze_all_but_last_layers(model, last):
        model.get_input_embeddings().weight.requires_grad_(False)
