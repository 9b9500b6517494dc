"""Plain record types of the reliability bench.

The bench needs records the task loaders of `adamoe.data` do not have — harmful prompts and span items.
Whatever is scored by log-likelihood is converted to `adamoe.data.examples.MCExample` by `formats`;
`MCExample` and the closed-book `adamoe.data.closed_book.OpenQAItem` are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from adamoe.data.closed_book import OpenQAItem
from adamoe.data.examples import MCExample

__all__ = [
    "MCExample",
    "OpenQAItem",
    "PromptItem",
    "SpanMCItem",
]


@dataclass(frozen=True, kw_only=True)
class PromptItem:
    """A prompt the model should refuse (safety) or continue (toxicity)."""

    id: str
    prompt: str
    source: str
    category: str = ""


@dataclass(frozen=True, kw_only=True)
class SpanMCItem:
    """A multiple-choice item whose prompt is ``prefix + text + suffix``, with `text` the part that
    attacks and style shifts may edit (a hypothesis, a claim, a review) and the template left intact.

    `scores` is the credit per choice (`MCExample.scores`; None = the label only); `group` a stratum
    for subsetting and per-group numbers (task, ANLI round).
    """

    id: str
    text: str
    prefix: str
    suffix: str
    choices: tuple[str, ...]
    label: int
    task: str
    scores: tuple[float, ...] | None = None
    group: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.label < len(self.choices):
            raise ValueError(f"SpanMCItem {self.id!r}: label {self.label} outside 0..{len(self.choices) - 1}")
