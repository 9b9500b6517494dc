"""Deterministic train / validation / test partitions of one labelled split, by a hash of each item.

Why: the offline benchmarks ship only their validation split (the hub's test labels are hidden), yet
fine-tuning needs items the test never sees, and choices (the pilot, hyperparameters) need a third part.
Each item is ranked by ``sha1(context ␞ choices ␞ continuation)`` of its *mapped* prompt, so the
partition does not depend on row order, on which source served the rows (hub or offline wheel), or on
the raw schema's types; identical items share a key and so always land in the same part (no leakage).

Sizes (:func:`split_sizes`): test is 30%, raised to 300 items while 30% remain for train and
validation; validation is 10% (at least one item from 10 items on); train is the rest; a split of
fewer than 10 items is all test. Items come back in hash order, so ``limit`` keeps a fixed pseudo-random
sample spread over the data, not its first rows. :func:`spread` caps a set of several groups (sources,
categories) round-robin, so a small cap still covers every group.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from adamoe.data.examples import MCExample

__all__ = ["PARTS", "canonical_part", "item_key", "partition", "split_sizes", "spread"]

T = TypeVar("T")

PARTS = ("train", "validation", "test", "all")
_ALIASES = {"dev": "validation", "val": "validation"}


def split_sizes(n: int) -> tuple[int, int, int]:
    """(train, validation, test) sizes for ``n`` distinct items (rule in the module docstring)."""
    if n < 10:
        return 0, 0, n
    n_test = max(math.ceil(0.3 * n), min(300, math.floor(0.7 * n)))
    n_val = max(1, round(0.1 * n))
    return n - n_test - n_val, n_val, n_test


def item_key(context: str, choices: Sequence[str], continuation: str | None = None) -> str:
    """The stable hash that orders an item: sha1 hex of its prompt text, choices and continuation."""
    text = "\u241e".join([context, *choices, continuation or ""])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def canonical_part(split: str) -> str:
    """``split`` as one of :data:`PARTS` (``dev``/``val`` mean validation); one-line error otherwise."""
    part = _ALIASES.get(split, split)
    if part not in PARTS:
        raise ValueError(f"split: expected one of {', '.join(PARTS)} (or dev), got {split!r}")
    return part


def partition(examples: Sequence[MCExample], split: str) -> list[MCExample]:
    """The ``split`` part of ``examples`` in hash order (``all``: every item, hash order)."""
    part = canonical_part(split)
    ranked = sorted(examples, key=lambda e: (item_key(e.context, e.choices, e.continuation), e.id))
    _, n_val, n_test = split_sizes(len(ranked))
    bounds = {
        "test": (0, n_test),
        "validation": (n_test, n_test + n_val),
        "train": (n_test + n_val, len(ranked)),
        "all": (0, len(ranked)),
    }
    start, stop = bounds[part]
    return ranked[start:stop]


def spread(items: Sequence[T], limit: int | None, *, key: Callable[[T], str]) -> list[T]:
    """Up to `limit` items taken round-robin over `key` groups (first-seen order), so a small limit
    still covers every category instead of the first one only."""
    if limit is None or limit >= len(items):
        return list(items)
    groups: dict[str, list[T]] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    out: list[T] = []
    depth = 0
    while len(out) < limit:
        for group in groups.values():
            if depth < len(group) and len(out) < limit:
                out.append(group[depth])
        depth += 1
    return out
