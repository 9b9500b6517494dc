"""Surface shifts for OOD robustness, applied to one text field of the items (`shift_field`).

Shifts: casing (upper / lower / title / random per letter) and seeded typos (`typos`: the character
edits of `adamoe.rbench.perturb.chars` on random words, never inside a name, no model in the loop). The former register rewrites (formal / informal,
from small contraction and slang tables) changed 0-16% of the items of the reference run, so they were
never pooled; they were removed (`REMOVED_SHIFTS`). Choices are never changed, so ID and OOD items stay
paired by id and differ only in surface form. Random shifts draw from
`random.Random(f"{seed}:{example id}")`, so a shifted item does not depend on set order.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from adamoe.rbench.perturb.chars import CHAR_KINDS, CHAR_OPS
from adamoe.rbench.perturb.constraints import entity_indices
from adamoe.rbench.perturb.text import keyed_rng, render, word_spans
from adamoe.utils.config import Config, option, require

T = TypeVar("T", bound=Any)

SHIFT_KINDS: tuple[str, ...] = ("upper", "lower", "title", "random_case", "typos")
REMOVED_SHIFTS: tuple[str, ...] = ("informal", "formal")


def random_case(text: str, rng: random.Random, *, p_upper: float = 0.5) -> str:
    """Each letter independently upper-cased with probability `p_upper`, else lower-cased."""
    return "".join((c.upper() if rng.random() < p_upper else c.lower()) if c.isalpha() else c for c in text)


def typos(text: str, *, n_edits: int, kinds: Sequence[str], seed: int, key: str) -> str:
    """`text` with up to `n_edits` distinct words each hit by one random character edit of `kinds`
    (random words and kinds from the stream of (seed, key)); words of names are never edited."""
    rng = keyed_rng(seed, key or text)
    spans = word_spans(text)
    words = [text[s:e] for s, e in spans]
    protected = entity_indices(text, spans)
    order = [i for i in range(len(words)) if i not in protected]
    rng.shuffle(order)
    edited = 0
    for i in order:
        if edited >= n_edits:
            break
        kind_order = list(kinds)
        rng.shuffle(kind_order)
        for kind in kind_order:
            new = CHAR_OPS[kind](words[i], rng)
            if new is not None and new != words[i]:
                words[i] = new
                edited += 1
                break
    return render(text, spans, words)


@dataclass(kw_only=True)
class ShiftConfig(Config):
    """One style shift. `typo_rate` is the fraction of words hit by one character edit (at least 1)."""

    kind: str = option(choices=SHIFT_KINDS)
    typo_rate: float = option(0.1, gt=0.0, le=1.0)
    typo_kinds: tuple[str, ...] = ("swap", "delete", "insert")
    seed: int = 0

    def check(self) -> None:
        require(
            bool(self.typo_kinds) and all(k in CHAR_KINDS for k in self.typo_kinds),
            f"typo_kinds: expected a non-empty subset of {list(CHAR_KINDS)}, got {list(self.typo_kinds)}",
        )

    @property
    def name(self) -> str:
        return f"typos{self.typo_rate:g}" if self.kind == "typos" else self.kind


def shift_text(text: str, cfg: ShiftConfig, *, key: str = "") -> str:
    """Apply one shift to a string; `key` (the example id) seeds the random shifts."""
    cfg.validate()
    rng = keyed_rng(cfg.seed, key or text)
    if cfg.kind == "upper":
        return text.upper()
    if cfg.kind == "lower":
        return text.lower()
    if cfg.kind == "title":
        return re.sub(r"[^\W\d_]+", lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), text)
    if cfg.kind == "random_case":
        return random_case(text, rng)
    n_words = len(word_spans(text))
    n_edits = max(1, math.floor(cfg.typo_rate * n_words)) if n_words else 0
    return typos(text, n_edits=n_edits, kinds=cfg.typo_kinds, seed=cfg.seed, key=key or text)


def shift_field(items: Sequence[T], cfg: ShiftConfig, *, field: str) -> list[T]:
    """Shift one string field of dataclass records (e.g. `text` of a review, `premise` of an NLI pair).

    Shifting the raw text before formatting keeps the prompt template itself unshifted.
    """
    if not items:
        raise ValueError("items: expected at least one item to shift, got none")
    out = []
    for it in items:
        value = getattr(it, field, None)
        if not isinstance(value, str):
            raise ValueError(
                f"field: expected the name of a string field of {type(it).__name__}, got {field!r}"
            )
        out.append(replace(it, **{field: shift_text(value, cfg, key=str(getattr(it, "id", "")))}))  # type: ignore[type-var]
    return out


def default_shifts(*, seed: int = 0) -> list[ShiftConfig]:
    """The suite's default surface shifts."""
    return [
        ShiftConfig(kind="upper", seed=seed),
        ShiftConfig(kind="lower", seed=seed),
        ShiftConfig(kind="random_case", seed=seed),
        ShiftConfig(kind="typos", typo_rate=0.1, seed=seed),
    ]
