"""Batched generation that attributes every real token's routing to the item it belongs to.

Prompts are left-padded into one batch and continued with `transformers` `generate`: greedy
(`do_sample=False`) by default, or sampled (`sample_seed` set: temperature 1, nucleus `top_p`) from
a torch RNG seeded with `sample_seed` inside `torch.random.fork_rng`, so the caller's RNG state is
untouched and each sampling purpose has its own stream.
A forward pre-hook tells the per-item recorder which rows are which items and which tokens are real;
rows that already emitted EOS stop counting, so routing covers what a one-by-one run would process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from adamoe.eval.encoding import pad_token_id
from adamoe.stats import ItemRoutingRecorder

__all__ = ["eos_ids", "generate_batch", "left_pad"]


def _as_set(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}


def eos_ids(model: nn.Module, tokenizer: Any) -> set[int]:
    """Every end-of-sequence id the tokenizer or the model's generation config declares."""
    eos = _as_set(getattr(tokenizer, "eos_token_id", None))
    gen_cfg = getattr(model, "generation_config", None)
    if gen_cfg is not None:
        eos |= _as_set(getattr(gen_cfg, "eos_token_id", None))
    return eos


def left_pad(tokens: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, W) input ids left-padded with `pad` and the (B, W) attention mask, W = longest prompt."""
    width = max(len(t) for t in tokens)
    input_ids = torch.full((len(tokens), width), pad, dtype=torch.long)
    mask = torch.zeros((len(tokens), width), dtype=torch.long)
    for r, t in enumerate(tokens):
        if t:
            input_ids[r, width - len(t) :] = torch.tensor(list(t), dtype=torch.long)
            mask[r, width - len(t) :] = 1
    return input_ids, mask


def _row_map_hook(
    rec: ItemRoutingRecorder, row_ids: Sequence[str], eos: set[int]
) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], None]:
    """Forward pre-hook: before each decoding step, tell `rec` which (B, L) tokens are real and unfinished."""
    eos_tensor = torch.tensor(sorted(eos), dtype=torch.long)
    done = torch.zeros(len(row_ids), dtype=torch.bool)
    step = [0]

    def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        am = kwargs.get("attention_mask")
        if ids is None:
            return
        new = ids.shape[1]
        real = (
            am[:, -new:].to(torch.bool).cpu() if am is not None else torch.ones(ids.shape, dtype=torch.bool)
        )
        if step[0] > 0 and eos_tensor.numel():
            # the token fed now was produced last step: after an EOS a one-by-one run would have stopped
            done.logical_or_(torch.isin(ids[:, -1].cpu(), eos_tensor))
            real = real & ~done[:, None]
        step[0] += 1
        rec.set_batch(row_ids, real)

    return pre_hook


def generate_batch(
    model: nn.Module,
    tokenizer: Any,
    row_ids: Sequence[str],
    tokens: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    rec: ItemRoutingRecorder | None,
    sample_seed: int | None = None,
    top_p: float = 0.9,
) -> list[str]:
    """Continuations (text up to the first EOS) of token-id prompts, one per row id: greedy, or
    sampled when `sample_seed` is given."""
    from transformers import GenerationConfig

    pad = pad_token_id(tokenizer)
    eos = eos_ids(model, tokenizer)
    input_ids, mask = left_pad(tokens, pad)
    width = input_ids.shape[1]
    device = next(model.parameters()).device
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sample_seed is not None,
        **({"temperature": 1.0, "top_p": top_p, "top_k": 0} if sample_seed is not None else {}),
        num_beams=1,
        pad_token_id=pad,
        eos_token_id=sorted(eos) or None,
    )
    handle = (
        model.register_forward_pre_hook(_row_map_hook(rec, row_ids, eos), with_kwargs=True)
        if rec is not None
        else None
    )
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            if sample_seed is not None:
                torch.manual_seed(sample_seed)
            out = model.generate(
                input_ids=input_ids.to(device), attention_mask=mask.to(device), generation_config=config
            )
    finally:
        if handle is not None:
            handle.remove()
    texts = []
    for row in out[:, width:].tolist():
        cut = next((i for i, t in enumerate(row) if t in eos), len(row))
        texts.append(tokenizer.decode(row[:cut], skip_special_tokens=True))
    return texts
