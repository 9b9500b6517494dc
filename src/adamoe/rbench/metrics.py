"""Scores of the reliability bench, written out so every number in a report has one definition.

Conventions:
- Closed-book QA: SQuAD-style normalisation (lowercase, drop ASCII punctuation, drop the articles
  a/an/the, collapse whitespace); an answer is correct when a normalised gold alias occurs in it as whole
  words (`answer_match`), abstains when it declines (`abstains`).
- `length_only` gives the log-likelihoods of a scorer that sees nothing but lengths (shorter = likelier),
  the reference line a log-likelihood score has to beat: summed log-likelihoods favour short answers.
- Attack success rate: among items the model got right on clean input, the fraction the attack flips;
  NaN when no item was right (nothing to attack).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation, drop articles, collapse whitespace (the SQuAD recipe)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _check_answers(answers: Sequence[str]) -> None:
    if isinstance(answers, str) or len(answers) == 0:
        raise ValueError("answers: expected a non-empty list of gold strings")


_ABSTAIN = re.compile(
    r"\b(i (do not|don't|dont) know|not sure|no idea|unknown|i (cannot|can't) (answer|say|tell)|"
    r"i am not certain|i'm not certain|unsure|no one knows|nobody knows)\b"
)


def answer_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if a normalised gold answer occurs in the normalised prediction as whole words.

    Why not exact match alone: closed-book answers come as short sentences ("It was Paris."); lm-eval's
    nq_open / triviaqa exact match cuts the first line and would count these wrong. Containment of
    any gold alias (SQuAD normalisation, word boundaries) is the usual closed-book hallucination score.
    """
    _check_answers(answers)
    pred = f" {normalize_answer(prediction)} "
    return float(any(g and f" {g} " in pred for g in map(normalize_answer, answers)))


def abstains(prediction: str) -> bool:
    """Whether an answer declines to answer: empty, or a phrase such as "I don't know" / "not sure"."""
    text = prediction.strip().lower().replace("\u2019", "'")
    return not text or _ABSTAIN.search(text) is not None


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
