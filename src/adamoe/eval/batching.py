"""Batching and forward calls of the scorer: plan batches, pad, run, and read the choice log-probs.

The speed comes from not recomputing what every choice shares: the common token prefix of an item
runs once (left-padded, so every prefix ends at the last column), its KV cache is fanned out to the
choices, and only the choice tokens run again (right-padded after the cache). Items are sorted by
length so batches carry little padding, and the vocabulary projection is computed only where a
continuation token is scored (``logits_to_keep``). Models without a reusable cache fall back to
whole sequences (lm-eval's layout: left-padded, truncated from the left to the context window).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from adamoe.eval.records import BatchInfo, OnBatch
from adamoe.eval.requests import ScoreItem

__all__ = ["Runner", "Scores", "pad_batch", "plan_batches", "run_full_batch", "run_prefix_batch"]

Scores = dict[int, tuple[list[float], list[bool]]]
"""item index -> (log-likelihood per choice, whether greedy decoding emits the choice)."""


def plan_batches(
    items: list[ScoreItem], batch_size: int, cost: Callable[[ScoreItem], tuple[int, int]]
) -> list[list[ScoreItem]]:
    """Sort longest first (padding stays small, memory peaks early) and cut into batches of rows."""
    ordered = sorted(items, key=lambda it: (*cost(it), it.index), reverse=True)
    batches: list[list[ScoreItem]] = []
    current: list[ScoreItem] = []
    rows = 0
    for it in ordered:
        if current and rows + it.rows > batch_size:
            batches.append(current)
            current, rows = [], 0
        current.append(it)
        rows += it.rows
    if current:
        batches.append(current)
    return batches


class Runner:
    """Owns the forward calls: kwargs the model accepts, the ``on_batch`` hook, and a call counter."""

    def __init__(self, model: Any, on_batch: OnBatch | None, pad_id: int):
        self.model = model
        self.on_batch = on_batch
        self.pad_id = pad_id
        self.device = next(model.parameters()).device
        self.n_forward = 0
        self.keep_logits = _accepts(model, "logits_to_keep")

    def __call__(self, info: BatchInfo, keep: int, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        """Forward ``info.input_ids`` (B, L); returns logits (B, keep or L, V) and the KV cache (or None)."""
        hook = self.on_batch(info) if self.on_batch is not None else None
        with hook if hook is not None else contextlib.nullcontext():
            if self.keep_logits:
                kwargs["logits_to_keep"] = keep
            out = self.model(input_ids=info.input_ids, attention_mask=info.attention_mask, **kwargs)
        self.n_forward += 1
        logits = out.logits
        if not self.keep_logits and keep:
            logits = logits[:, -keep:]
        return logits, getattr(out, "past_key_values", None)


def _accepts(model: Any, name: str) -> bool:
    for candidate in (model, getattr(model, "get_base_model", lambda: None)()):
        if candidate is None:
            continue
        try:
            if name in inspect.signature(candidate.forward).parameters:
                return True
        except (TypeError, ValueError):
            continue
    return False


def pad_batch(
    seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device, *, left: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token lists into (B, W) ids and a (B, W) 0/1 mask of real tokens, W = the longest list.

    ``left=True`` pads on the left (every sequence ends at the last column, as generation and the
    prefix pass need); ``left=False`` pads on the right.
    """
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if not s:
            continue
        cols = slice(width - len(s), width) if left else slice(0, len(s))
        ids[i, cols] = torch.tensor(s, dtype=torch.long)
        mask[i, cols] = 1
    return ids.to(device), mask.to(device)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """(B, W) position ids of a left-padded (B, W) mask: 0 at each row's first real token."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _score_rows(logprobs: torch.Tensor, targets: list[int]) -> tuple[float, bool]:
    """Sum of target log-probs over (n, V) ``logprobs`` and whether greedy decoding emits the n targets."""
    tgt = torch.tensor(targets, dtype=torch.long, device=logprobs.device)
    picked = logprobs.gather(-1, tgt[:, None]).squeeze(-1)
    greedy = bool((logprobs.argmax(-1) == tgt).all())
    return float(picked.sum()), greedy


def _empty_scores(batch: list[ScoreItem]) -> Scores:
    return {it.index: ([0.0] * it.rows, [False] * it.rows) for it in batch}


def run_prefix_batch(run: Runner, batch: list[ScoreItem]) -> Scores | None:
    """Shared prefixes once (left-padded), then every choice's remaining tokens on the fanned-out cache.

    Returns None when the model gives no cache that can be fanned out: the caller scores full sequences.
    """
    ids = tuple(it.example.id for it in batch)
    prefixes = [it.full(0)[: it.prefix_len] for it in batch]
    p_ids, p_mask = pad_batch(prefixes, run.pad_id, run.device, left=True)
    p_logits, cache = run(
        BatchInfo("prefix", p_ids, p_mask, ids), keep=1, position_ids=_positions(p_mask), use_cache=True
    )
    last = F.log_softmax(p_logits[:, -1].float(), dim=-1)  # predicts the first token after each prefix

    # Row r of item e continues the prefix with full[P : n-1] (the last token is only a target).
    row_of: list[tuple[int, int]] = []
    suffixes: list[list[int]] = []
    for e, it in enumerate(batch):
        for r in range(it.rows):
            tail = it.full(r)[it.prefix_len : -1]
            if tail:
                row_of.append((e, r))
                suffixes.append(tail)
    s_logprobs: torch.Tensor | None = None
    if suffixes:
        if cache is None or not hasattr(cache, "batch_select_indices"):
            return None
        s_logprobs = _run_suffixes(run, batch, cache, p_mask, row_of, suffixes, ids)
    del cache
    return _read_prefix_scores(batch, last, s_logprobs, row_of)


def _run_suffixes(
    run: Runner,
    batch: list[ScoreItem],
    cache: Any,
    p_mask: torch.Tensor,
    row_of: list[tuple[int, int]],
    suffixes: list[list[int]],
    ids: tuple[str, ...],
) -> torch.Tensor:
    """(R, S, V) log-probs of the R suffix rows, each continuing its item's prefix cache (fanned out)."""
    owner = torch.tensor([e for e, _ in row_of], dtype=torch.long, device=run.device)
    cache.batch_select_indices(owner)
    s_ids, s_mask = pad_batch(suffixes, run.pad_id, run.device, left=False)
    mask = torch.cat([p_mask.index_select(0, owner), s_mask], dim=1)
    start = torch.tensor([batch[e].prefix_len for e, _ in row_of], device=run.device)
    pos = start[:, None] + torch.arange(s_ids.shape[1], device=run.device)[None, :]
    s_logits, _ = run(
        BatchInfo("suffix", s_ids, mask, tuple(ids[e] for e, _ in row_of)),
        keep=0,
        past_key_values=cache,
        position_ids=pos,
        use_cache=True,
    )
    return F.log_softmax(s_logits.float(), dim=-1)


def _read_prefix_scores(
    batch: list[ScoreItem],
    last: torch.Tensor,
    s_logprobs: torch.Tensor | None,
    row_of: list[tuple[int, int]],
) -> Scores:
    """Gather each choice's target log-probs: (B, V) ``last`` of the prefixes, (R, S, V) of the suffixes."""
    out = _empty_scores(batch)
    where = {key: i for i, key in enumerate(row_of)}
    for e, it in enumerate(batch):
        for r in range(it.rows):
            c, n, p = len(it.ctx[r]), len(it.full(r)), it.prefix_len
            parts = []
            if c == p:
                parts.append(last[e : e + 1])
            if (e, r) in where:
                assert s_logprobs is not None
                parts.append(s_logprobs[where[(e, r)], max(c - 1 - p, 0) : n - 1 - p])
            ll, greedy = _score_rows(torch.cat(parts, dim=0), it.cont[r])
            out[it.index][0][r], out[it.index][1][r] = ll, greedy
    return out


def run_full_batch(run: Runner, batch: list[ScoreItem], max_length: int) -> Scores:
    """Whole requests, left-padded so every continuation ends at the last column (lm-eval truncation)."""
    seqs, targets, owners = [], [], []
    for it in batch:
        for r in range(it.rows):
            seqs.append(it.full(r)[-(max_length + 1) :][:-1])
            targets.append(it.cont[r])
            owners.append((it.index, r))
    ids, mask = pad_batch(seqs, run.pad_id, run.device, left=True)
    keep = max(len(t) for t in targets)
    row_ids = tuple(it.example.id for it in batch for _ in range(it.rows))
    logits, _ = run(
        BatchInfo("full", ids, mask, row_ids), keep=keep, position_ids=_positions(mask), use_cache=False
    )
    logprobs = F.log_softmax(logits[:, -keep:].float(), dim=-1)
    out = _empty_scores(batch)
    for row, ((index, r), tgt) in enumerate(zip(owners, targets)):
        ll, greedy = _score_rows(logprobs[row, keep - len(tgt) :], tgt)
        out[index][0][r], out[index][1][r] = ll, greedy
    return out
