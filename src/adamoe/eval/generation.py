"""Generation for any HF causal LM: batched, left-padded, cached per item, with per-item routing.

The generation counterpart of :mod:`adamoe.eval.scoring`. Prompts are left-padded into one batch and
continued with `transformers` `generate`: greedy (`do_sample=False`) by default, or sampled
(`sample_seed` set: temperature 1, nucleus `top_p`) from a torch RNG seeded with `sample_seed` inside
`torch.random.fork_rng`, so the caller's RNG state is untouched and each sampling purpose has its own
stream. A forward pre-hook tells the per-item recorder (:class:`adamoe.stats.ItemRoutingRecorder`) which
rows are which items and which tokens are real; rows that already emitted EOS stop counting, so routing
covers what a one-by-one run would process.

:func:`generate_texts` adds the cache (:class:`~adamoe.eval.cache.ScoreCache`): an item found there (same
model, task, id, rendered prompt, length and sampling seed) is never generated again, and each batch is
appended as it finishes with the item's routing sums, so a killed run resumes with the same texts and
the same routing statistics.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from adamoe.eval.encoding import pad_token_id, resolve_max_length
from adamoe.stats import ItemRoutingRecorder

if TYPE_CHECKING:
    from adamoe.eval.cache import ScoreCache

__all__ = [
    "Generations",
    "chat_prompt",
    "eos_ids",
    "generate_batch",
    "generate_texts",
    "item_recorder",
    "left_pad",
    "routing_entry",
]


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


def chat_prompt(tokenizer: Any, prompt: str, *, chat: bool) -> str:
    """The prompt as the model sees it: raw, or one user turn in the tokenizer's chat template."""
    if not chat:
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("chat: the tokenizer has no chat template; set chat to false or 'auto'")
    return str(
        tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    )


def _encode(tokenizer: Any, text: str, *, chat: bool, room: int) -> list[int]:
    """Token ids of a rendered prompt, its last `room` kept (the chat template carries its own specials)."""
    ids = list(tokenizer.encode(text, add_special_tokens=not chat))
    return ids[-room:] if len(ids) > room else ids


@dataclass(kw_only=True)
class Generations:
    """Texts in input order; `entries[id]`: the cached form of each item (text, the cache task it was
    generated under, and routing sums and shapes when recorded); `n_generated`: items that were not in
    the cache."""

    texts: list[str]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_generated: int = 0


@contextlib.contextmanager
def item_recorder(model: nn.Module, on: bool) -> Iterator[ItemRoutingRecorder | None]:
    """An entered per-item routing recorder on `model` when `on` (a routed model), else None."""
    if not on:
        yield None
        return
    with ItemRoutingRecorder(model) as rec:
        yield rec


def routing_entry(rec: ItemRoutingRecorder | None, item_id: str) -> dict[str, Any]:
    """An item's routing sums and layer shapes as JSON for its cache entry ({} without a recorder)."""
    if rec is None:
        return {}
    packs = rec.items.get(item_id, {})
    return {
        "routing": {layer: np.asarray(v).tolist() for layer, v in packs.items()},
        "shapes": {layer: list(rec.shapes[layer]) for layer in packs},
    }


def _from_cache(
    cache: ScoreCache | None,
    prompts: Sequence[tuple[str, str]],
    rendered: Sequence[str],
    out: Generations,
    *,
    task: str,
    max_new_tokens: int,
    sample_seed: int | None,
) -> tuple[list[str], list[int]]:
    """Each item's cache key ("" without a cache) and the positions of the items still to generate; the
    items found are copied into `out`. A key covers the rendered prompt, `max_new_tokens` and, when
    sampling, the seed (greedy keys leave it out, so entries cached before sampling existed still hit)."""
    seeds = [] if sample_seed is None else [sample_seed]
    keys = [
        cache.key(task=task, example_id=i, prompt=json.dumps([r, max_new_tokens, *seeds], ensure_ascii=False))
        if cache is not None
        else ""
        for (i, _), r in zip(prompts, rendered)
    ]
    todo = []
    for n, (item_id, _) in enumerate(prompts):
        hit = cache.get(keys[n]) if cache is not None else None
        if hit is None:
            todo.append(n)
        else:
            out.texts[n], out.entries[item_id] = str(hit["text"]), hit
    return keys, todo


def generate_texts(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[tuple[str, str]],
    *,
    max_new_tokens: int,
    chat: bool = False,
    batch_size: int = 8,
    sample_seed: int | None = None,
    cache: ScoreCache | None = None,
    task: str = "generate",
    record_routing: bool = False,
    on_batch: Callable[[list[str]], None] | None = None,
) -> Generations:
    """Continuations of (id, prompt) pairs (module doc): cached per item under `task`, greedy or sampled
    (`sample_seed`; each batch gets its own stream), routing recorded per item when `record_routing`.
    `on_batch(ids)` is called before each batch of generation (progress, fault injection)."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens: expected a positive int, got {max_new_tokens!r}")
    room = resolve_max_length(model, tokenizer) - max_new_tokens
    if room < 1:
        raise ValueError(
            f"max_new_tokens: {max_new_tokens} leaves no room for a prompt in the model's window"
        )
    rendered = [chat_prompt(tokenizer, p, chat=chat) for _, p in prompts]
    out = Generations(texts=[""] * len(prompts))
    keys, todo = _from_cache(
        cache, prompts, rendered, out, task=task, max_new_tokens=max_new_tokens, sample_seed=sample_seed
    )
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        ids = [prompts[n][0] for n in chunk]
        if on_batch is not None:
            on_batch(ids)
        tokens = [_encode(tokenizer, rendered[n], chat=chat, room=room) for n in chunk]
        seed = None if sample_seed is None else sample_seed + chunk[0]  # a stream per batch
        with item_recorder(model, record_routing) as rec:
            texts = generate_batch(
                model, tokenizer, ids, tokens, max_new_tokens=max_new_tokens, rec=rec, sample_seed=seed
            )
        entries = []
        for n, item_id, text in zip(chunk, ids, texts):
            out.texts[n], out.entries[item_id] = (
                text,
                {"id": item_id, "text": text, "task": task, **routing_entry(rec, item_id)},
            )
            entries.append((keys[n], out.entries[item_id]))
        if cache is not None:
            cache.put_many(entries)
        out.n_generated += len(chunk)
    return out
