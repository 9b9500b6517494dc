"""Style shifts for OOD robustness, applied to one text field of the items (`shift_field`).

Shifts: casing (upper / lower / title / random per letter), seeded typos (the character edits of
`adamoe.rbench.perturb.attacks`, no model in the loop), and register rewrites from our own small tables (formal →
informal: contractions and everyday slang; informal → formal: the inverse). Choices are never
changed, so ID and OOD items stay paired by id and differ only in style. Random shifts draw from
`random.Random(f"{seed}:{example id}")`, so a shifted item does not depend on set order.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from adamoe.rbench.perturb.attacks import perturb_randomly
from adamoe.rbench.perturb.chars import CHAR_KINDS
from adamoe.rbench.perturb.text import match_case, word_spans
from adamoe.utils.config import Config, option, require

T = TypeVar("T", bound=Any)

SHIFT_KINDS: tuple[str, ...] = ("upper", "lower", "title", "random_case", "typos", "informal", "formal")

# Written for this project. Longest keys are applied first, so "will not" wins over "will".
CONTRACTIONS: Mapping[str, str] = {
    "i am": "i'm",
    "you are": "you're",
    "we are": "we're",
    "they are": "they're",
    "it is": "it's",
    "that is": "that's",
    "there is": "there's",
    "he is": "he's",
    "she is": "she's",
    "i have": "i've",
    "you have": "you've",
    "we have": "we've",
    "i will": "i'll",
    "you will": "you'll",
    "we will": "we'll",
    "i would": "i'd",
    "do not": "don't",
    "does not": "doesn't",
    "did not": "didn't",
    "is not": "isn't",
    "are not": "aren't",
    "was not": "wasn't",
    "were not": "weren't",
    "have not": "haven't",
    "has not": "hasn't",
    "will not": "won't",
    "would not": "wouldn't",
    "could not": "couldn't",
    "should not": "shouldn't",
    "cannot": "can't",
    "can not": "can't",
}

SLANG: Mapping[str, str] = {
    "going to": "gonna",
    "want to": "wanna",
    "got to": "gotta",
    "kind of": "kinda",
    "because": "cuz",
    "very": "super",
    "yes": "yeah",
    "hello": "hey",
    "thank you": "thanks",
    "children": "kids",
    "friend": "buddy",
    "friends": "buddies",
    "money": "cash",
    "excellent": "awesome",
    "television": "tv",
    "police": "cops",
    "relax": "chill",
    "really": "real",
    "perhaps": "maybe",
    "about": "bout",
}

# Inverse tables for the formal direction (plus a few informal-only entries we add by hand).
FORMAL: Mapping[str, str] = {
    **{v: k for k, v in CONTRACTIONS.items() if k != "can not"},
    **{v: k for k, v in SLANG.items() if v not in ("real", "maybe", "bout", "super")},
    "ain't": "is not",
    "y'all": "all of you",
    "lemme": "let me",
    "gimme": "give me",
    "dunno": "do not know",
    "ok": "acceptable",
    "okay": "acceptable",
    "stuff": "things",
    "guys": "people",
}


def _table_pattern(table: Mapping[str, str]) -> re.Pattern[str]:
    keys = sorted(table, key=len, reverse=True)
    alts = "|".join(re.escape(k).replace(r"\ ", r"\s+").replace("'", "['\u2019]") for k in keys)
    return re.compile(rf"(?<![\w'])(?:{alts})(?![\w'])", re.IGNORECASE)


_CONTRACT_RE = _table_pattern(CONTRACTIONS)
_SLANG_RE = _table_pattern(SLANG)
_FORMAL_RE = _table_pattern(FORMAL)


def _rewrite(text: str, pattern: re.Pattern[str], table: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        found = m.group(0)
        key = " ".join(found.lower().replace("\u2019", "'").split())
        return match_case(table[key], found)

    return pattern.sub(sub, text)


def to_informal(text: str) -> str:
    """Contract and swap in slang from our tables (word-bounded, case-preserving)."""
    return _rewrite(_rewrite(text, _CONTRACT_RE, CONTRACTIONS), _SLANG_RE, SLANG)


def to_formal(text: str) -> str:
    """Expand contractions and replace informal words from our tables."""
    return _rewrite(text, _FORMAL_RE, FORMAL)


def random_case(text: str, rng: random.Random, *, p_upper: float = 0.5) -> str:
    """Each letter independently upper-cased with probability `p_upper`, else lower-cased."""
    return "".join((c.upper() if rng.random() < p_upper else c.lower()) if c.isalpha() else c for c in text)


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
    rng = random.Random(f"{cfg.seed}:{key or text}")
    if cfg.kind == "upper":
        return text.upper()
    if cfg.kind == "lower":
        return text.lower()
    if cfg.kind == "title":
        return re.sub(r"[^\W\d_]+", lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), text)
    if cfg.kind == "random_case":
        return random_case(text, rng)
    if cfg.kind == "typos":
        n_words = len(word_spans(text))
        n_edits = max(1, math.floor(cfg.typo_rate * n_words)) if n_words else 0
        out, _ = perturb_randomly(text, n_edits=n_edits, kinds=cfg.typo_kinds, seed=cfg.seed, key=key or text)
        return out
    if cfg.kind == "informal":
        return to_informal(text)
    return to_formal(text)


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
    """The suite's default style shifts."""
    return [
        ShiftConfig(kind="upper", seed=seed),
        ShiftConfig(kind="lower", seed=seed),
        ShiftConfig(kind="random_case", seed=seed),
        ShiftConfig(kind="typos", typo_rate=0.1, seed=seed),
        ShiftConfig(kind="informal", seed=seed),
        ShiftConfig(kind="formal", seed=seed),
    ]
