"""Scoring of generated short answers (closed-book QA): SQuAD-style answer matching and abstention.

The answer is the first line of a "Q: ... A:" continuation, cut before a following "Q:" turn
(`extract_answer`). SQuAD normalisation (lowercase, drop ASCII punctuation, drop the articles a/an/the,
collapse whitespace); an answer is correct when a normalised gold alias occurs in it as whole words (`answer_match`), and
abstains when it declines to answer (`abstains`: empty, "I don't know", "not sure", ...).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

__all__ = ["abstains", "answer_match", "extract_answer", "normalize_answer"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def extract_answer(text: str) -> str:
    """First non-empty line of a continuation, cut before a following 'Q:' turn."""
    for line in text.splitlines():
        line = line.split("Q:", 1)[0].strip()
        if line:
            return line
    return ""


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
