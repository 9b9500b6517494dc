"""Text plumbing every perturbation shares: words, re-assembly, case carry-over, keyed random streams.

A word is a maximal run of letters (any script); digits, punctuation and spacing are never touched,
so a perturbed text differs from the original only inside words.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

__all__ = ["WORD_RE", "keyed_rng", "match_case", "render", "word_spans"]

WORD_RE = re.compile(r"[^\W\d_]+")
"""A word is a maximal run of letters (any script): edits never touch digits, punctuation or spaces."""


def match_case(new: str, old: str) -> str:
    """Carry the capitalisation pattern of `old` (UPPER, Title, lower) over to `new`.

    An UPPER `old` of one letter ("I") counts as Title. A lowercase `old` leaves `new` as written, so a
    proper noun keeps its capital.
    """
    if old.isupper() and len(old) > 1:
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the words of `text`, in order."""
    return [m.span() for m in WORD_RE.finditer(text)]


def render(text: str, spans: Sequence[tuple[int, int]], words: Sequence[str]) -> str:
    """`text` with the word at each span replaced by the matching entry of `words`."""
    parts: list[str] = []
    last = 0
    for (s, e), w in zip(spans, words):
        parts.append(text[last:s])
        parts.append(w)
        last = e
    parts.append(text[last:])
    return "".join(parts)


def keyed_rng(seed: int, key: str) -> random.Random:
    """A random stream of its own per (seed, key): results never depend on the order items are processed."""
    return random.Random(f"{seed}:{key}")  # str seeds hash with sha512: stable across processes
