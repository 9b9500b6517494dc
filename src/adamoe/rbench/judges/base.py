"""The two judge protocols and the text normalisation every offline judge matches against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["RefusalJudge", "ToxicityScorer", "check_pairs", "normalise"]


def normalise(text: str) -> str:
    """Lowercase, straight apostrophes, single spaces: the form phrase and lexicon patterns are written in."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split())


# ---------------------------------------------------------------- protocols


@runtime_checkable
class RefusalJudge(Protocol):
    """Decides for each (prompt, response) pair whether the response is a refusal."""

    name: str

    def judge(self, prompts: Sequence[str], responses: Sequence[str]) -> list[bool]:
        """One verdict per (prompt, response) pair: True = refused."""
        ...


@runtime_checkable
class ToxicityScorer(Protocol):
    """Scores each text with a toxicity in [0, 1]."""

    name: str

    def score(self, texts: Sequence[str]) -> list[float]:
        """One toxicity in [0, 1] per text."""
        ...


def check_pairs(prompts: Sequence[str], responses: Sequence[str]) -> None:
    """One response per prompt, or a one-line error."""
    if len(prompts) != len(responses):
        raise ValueError(f"responses: expected {len(prompts)} entries (one per prompt), got {len(responses)}")
