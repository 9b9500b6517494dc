"""Scores of the reliability bench, written out so every number in a report has one definition.

Conventions:
(Closed-book answers are scored by `adamoe.eval.answers`.)
- `length_only` gives the log-likelihoods of a scorer that sees nothing but lengths (shorter = likelier),
  the reference line a log-likelihood score has to beat: summed log-likelihoods favour short answers.
- Attack success rate: among items the model got right on clean input, the fraction the attack flips;
  NaN when no item was right (nothing to attack).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def length_only(choices: Sequence[str]) -> list[float]:
    """Log-likelihoods of a scorer that sees only lengths: minus each choice's length in characters."""
    return [-float(len(c)) for c in choices]


def _bools(flags: Iterable[bool], name: str) -> np.ndarray:
    arr = np.asarray(list(flags), dtype=bool)
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one entry, got none")
    return arr


def accuracy(correct: Iterable[bool]) -> float:
    """Share of True entries."""
    return float(_bools(correct, "correct").mean())


def attack_success_rate(clean_correct: Sequence[bool], adv_correct: Sequence[bool]) -> float:
    """Fraction of clean-correct items whose attacked version is wrong; NaN if none was correct."""
    clean = _bools(clean_correct, "clean_correct")
    adv = _bools(adv_correct, "adv_correct")
    if clean.shape != adv.shape:
        raise ValueError(f"adv_correct: expected {clean.size} entries (one per clean item), got {adv.size}")
    if not clean.any():
        return math.nan
    return float((clean & ~adv).sum() / clean.sum())
