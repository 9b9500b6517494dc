"""Log-likelihood multiple-choice scoring for any HF causal LM, lm-eval compatible and fast.

This module orchestrates; the parts live beside it:

- :mod:`adamoe.eval.encoding`: tokenisation exactly like lm-eval 0.4's HF backend;
- :mod:`adamoe.eval.requests`: one :class:`~adamoe.eval.requests.ScoreItem` per example (its choices
  as token rows, their shared prefix, its cache key);
- :mod:`adamoe.eval.batching`: batch planning, padding, the forward calls (shared prefix once, its KV
  cache fanned out to the choices) and reading the log-probs;
- :mod:`adamoe.eval.records`: :class:`MCRecord` / :class:`MCResult` / :class:`BatchInfo`.

With a score cache, each scored item is appended as its batch finishes, so a killed run resumes; with
an item routing recorder, each item's routing sums are cached beside its scores, so the Load and FLOPs
of a resumed or fully cached run equal those of a fresh one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import torch

from adamoe.data.examples import MCExample
from adamoe.eval.batching import Runner, Scores, plan_batches, run_full_batch, run_prefix_batch
from adamoe.eval.encoding import LMEncoder, pad_token_id, resolve_max_length
from adamoe.eval.records import BatchInfo, MCRecord, MCResult, OnBatch
from adamoe.eval.requests import ScoreItem, build_item, cache_key, shared_prefix_len

if TYPE_CHECKING:
    from adamoe.eval.cache import ScoreCache

__all__ = [
    "BatchInfo",
    "ItemRouting",
    "LMEncoder",
    "MCRecord",
    "MCResult",
    "pad_token_id",
    "resolve_max_length",
    "score_multiple_choice",
]


class ItemRouting(Protocol):
    """A per-item routing recorder (:class:`adamoe.stats.ItemRoutingRecorder`), already entered.

    ``items[example_id][layer]`` holds the packed routing sums of an item's real tokens; ``shapes``
    maps each layer to (true experts E, null experts m); ``on_batch`` is the scorer hook.
    """

    items: dict[str, dict[str, np.ndarray]]
    shapes: dict[str, tuple[int, int]]

    def on_batch(self, info: Any) -> None:
        """Called by the scorer before each forward with its :class:`BatchInfo` (row ids, real-token mask)."""


def score_multiple_choice(
    model: Any,
    tokenizer: Any,
    examples: Sequence[MCExample],
    *,
    batch_size: int = 16,
    cache: ScoreCache | str | Path | None = None,
    progress: bool = True,
    on_batch: OnBatch | None = None,
    target_delimiter: str = " ",
    mode: Literal["prefix", "full"] = "prefix",
    max_length: int | None = None,
    add_bos_token: bool | None = None,
    item_routing: ItemRouting | None = None,
) -> MCResult:
    """Score every example; results come back in input order.

    ``batch_size`` counts choice rows per forward (lm-eval's unit). ``cache`` (a
    :class:`~adamoe.eval.cache.ScoreCache` or a JSONL path) skips items already scored by the same
    model and appends new ones as each batch finishes, so a killed run resumes. ``on_batch`` is called
    before each forward with a :class:`BatchInfo`; a context manager it returns wraps that forward.
    ``mode="full"`` scores each choice as an independent sequence (no prefix reuse). ``item_routing``
    (an entered per-item recorder) collects each item's routing sums into ``MCResult.routing`` and the
    cache, so cached items keep their routing statistics (example ids must then be unique).

    Accuracy uses the task's own scoring (:class:`MCRecord`): an item counts as correct when its argmax
    choice is a gold, and ``MCResult.acc`` is the mean credit, the score of the chosen choice (BIG-bench's
    ``multiple_choice_grade``), so on items with several correct choices any of them counts. Items with
    one gold (no ``scores``) score exactly ``pred == label``, as lm-eval does.
    """
    _validate(examples, batch_size=batch_size, mode=mode, item_routing=item_routing)
    started = time.perf_counter()
    encoder = LMEncoder(tokenizer, add_bos_token=add_bos_token)
    max_len = max_length or resolve_max_length(model, tokenizer)
    store = _open_cache(cache, model, mode=mode)
    books = _Books(examples, store, item_routing)
    todo = []
    for i, ex in enumerate(examples):
        item = build_item(i, ex, encoder, max_length=max_len, target_delimiter=target_delimiter)
        if books.lookup(item):
            continue
        item.prefix_len = shared_prefix_len(item) if mode == "prefix" and item.fits(max_len) else 0
        todo.append(item)
    runner = Runner(model, _hooks(on_batch, item_routing), pad_token_id(tokenizer))
    _run_plans(runner, _plans(todo, batch_size), books, max_length=max_len, progress=progress)
    return books.result(
        n_forward=runner.n_forward,
        seconds=time.perf_counter() - started,
        extra={"mode": mode, "batch_size": batch_size, "max_length": max_len},
    )


def _validate(
    examples: Sequence[MCExample], *, batch_size: int, mode: str, item_routing: ItemRouting | None
) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if mode not in ("prefix", "full"):
        raise ValueError(f"mode: expected 'prefix' or 'full', got {mode!r}")
    if not all(isinstance(e, MCExample) for e in examples):
        raise ValueError("examples: expected a sequence of MCExample")
    if item_routing is not None and len({e.id for e in examples}) != len(examples):
        raise ValueError(
            "examples: ids must be unique to record routing per item (give each example its own id)"
        )


class _Books:
    """The records of one call: cache look-ups and writes, per-item routing, and the counters."""

    def __init__(self, examples: Sequence[MCExample], store: ScoreCache | None, routing: ItemRouting | None):
        self.examples = examples
        self.store = store
        self.routing = routing
        self.records: list[MCRecord | None] = [None] * len(examples)
        self.packs: dict[str, dict[str, np.ndarray]] = {}
        self.shapes: dict[str, tuple[int, int]] = {}
        self.n_cached = 0

    def lookup(self, item: ScoreItem) -> bool:
        """Fill ``item`` from the cache if it is there (with its routing, when routing is recorded)."""
        if self.store is None:
            return False
        item.key = cache_key(self.store, item)
        hit = self.store.get(item.key)
        if hit is None or (self.routing is not None and "routing" not in hit):
            return False  # an entry without routing is rescored when routing is wanted
        ex = item.example
        self.records[item.index] = MCRecord.build(ex, hit["loglikelihoods"], hit["is_greedy"], cached=True)
        if self.routing is not None:
            self.packs[ex.id] = {k: np.asarray(v, dtype=np.float64) for k, v in hit["routing"].items()}
            self.shapes.update({k: (int(v[0]), int(v[1])) for k, v in hit["routing_shapes"].items()})
        self.n_cached += 1
        return True

    def forget_routing(self, batch: list[ScoreItem]) -> None:
        """Drop what a failed forward recorded for ``batch`` (it is scored again another way)."""
        if self.routing is not None:
            for it in batch:
                self.routing.items.pop(it.example.id, None)

    def finish(self, batch: list[ScoreItem], scored: Scores) -> None:
        """Records for a scored batch; its cache entries (scores + routing) written in one append."""
        entries = []
        for it in batch:
            lls, greedy = scored[it.index]
            ex = it.example
            self.records[it.index] = MCRecord.build(ex, lls, greedy)
            value: dict[str, Any] = {"id": ex.id, "task": ex.task, "loglikelihoods": lls, "is_greedy": greedy}
            if self.routing is not None:
                self.packs[ex.id] = self.routing.items.get(ex.id, {})
                self.shapes.update(self.routing.shapes)
                value["routing"] = {k: v.tolist() for k, v in self.packs[ex.id].items()}
                value["routing_shapes"] = {k: list(self.shapes[k]) for k in self.packs[ex.id]}
            if it.key is not None:
                entries.append((it.key, value))
        if self.store is not None and entries:
            self.store.put_many(entries)

    def result(self, *, n_forward: int, seconds: float, extra: Mapping[str, Any]) -> MCResult:
        done = [r for r in self.records if r is not None]
        assert len(done) == len(self.examples)
        return MCResult(
            records=done,
            n_requests=sum(len(e.choices) for e in self.examples),
            n_forward=n_forward,
            n_cached=self.n_cached,
            seconds=seconds,
            extra=dict(extra),
            routing=self.packs if self.routing is not None else None,
            routing_shapes=dict(self.shapes),
        )


def _plans(todo: list[ScoreItem], batch_size: int) -> list[tuple[str, list[ScoreItem]]]:
    """Prefix-sharing items first (cost: prefix, then longest row), then whole-sequence items."""
    shared = [it for it in todo if it.prefix_len > 0]
    single = [it for it in todo if it.prefix_len == 0]
    plans = [
        ("prefix", b)
        for b in plan_batches(
            shared, batch_size, lambda it: (it.prefix_len, max(len(x) for x in it.cont) + len(it.ctx[0]))
        )
    ]
    plans += [
        ("full", b)
        for b in plan_batches(
            single, batch_size, lambda it: (max(len(it.full(r)) for r in range(it.rows)), 0)
        )
    ]
    return plans


def _run_plans(
    runner: Runner,
    plans: list[tuple[str, list[ScoreItem]]],
    books: _Books,
    *,
    max_length: int,
    progress: bool,
) -> None:
    """Run every batch in eval mode without gradients; a model without a usable KV cache falls back to
    full sequences for the rest of the call. The training flag is restored after."""
    model = runner.model
    was_training = bool(getattr(model, "training", False))
    model.eval()
    bar = _progress(len(books.examples), progress)
    bar.update(books.n_cached)
    try:
        with torch.no_grad():
            prefix_ok = True
            for kind, batch in plans:
                scored = run_prefix_batch(runner, batch) if kind == "prefix" and prefix_ok else None
                if scored is None:
                    if kind == "prefix" and prefix_ok:
                        books.forget_routing(batch)
                    prefix_ok = prefix_ok and kind != "prefix"
                    scored = run_full_batch(runner, batch, max_length)
                books.finish(batch, scored)
                bar.update(len(batch))
    finally:
        bar.close()
        if was_training:
            model.train()


def _hooks(on_batch: OnBatch | None, item_routing: ItemRouting | None) -> OnBatch | None:
    """One ``on_batch`` hook: the routing recorder's (told the rows first), then the caller's."""
    if item_routing is None:
        return on_batch
    if on_batch is None:
        return item_routing.on_batch

    def both(info: BatchInfo) -> Any:
        item_routing.on_batch(info)
        return on_batch(info)

    return both


def _open_cache(cache: ScoreCache | str | Path | None, model: Any, *, mode: str) -> ScoreCache | None:
    """The cache of a path keyed by the model and, beyond the default ``prefix``, the mode: a shared
    prefix is routed once per item and a full pass once per choice, so their routing sums differ."""
    if cache is None:
        return None
    from adamoe.eval.cache import ScoreCache, model_fingerprint

    if isinstance(cache, ScoreCache):
        return cache
    extra = "" if mode == "prefix" else f"mode={mode}"
    return ScoreCache(cache, model_fingerprint=model_fingerprint(model, extra=extra))


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="scoring", unit="item")
