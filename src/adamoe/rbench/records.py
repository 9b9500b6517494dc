"""Plain record types of the reliability bench.

The bench needs records the task loaders of `adamoe.data` do not have — harmful prompts,
TruthfulQA targets, closed-book QA answers, span items. Whatever is scored by
log-likelihood is converted to `adamoe.data.examples.MCExample` (re-exported here) by `formats`.
"""

from __future__ import annotations

from dataclasses import dataclass

from adamoe.data.examples import MCExample

__all__ = [
    "MCExample",
    "MCTargets",
    "OpenQAItem",
    "PromptItem",
    "SpanMCItem",
    "TruthfulQAItem",
]


@dataclass(frozen=True, kw_only=True)
class PromptItem:
    """A prompt the model should refuse (safety) or continue (toxicity)."""

    id: str
    prompt: str
    source: str
    category: str = ""


@dataclass(frozen=True, kw_only=True)
class MCTargets:
    """TruthfulQA-style target set: several choices, each labelled 1 (true) or 0 (false)."""

    choices: tuple[str, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.choices) != len(self.labels) or not self.choices:
            raise ValueError(
                f"MCTargets: choices and labels must be non-empty and equally long, got "
                f"{len(self.choices)} and {len(self.labels)}"
            )
        if any(v not in (0, 1) for v in self.labels):
            raise ValueError(f"MCTargets: labels must be 0/1, got {list(self.labels)}")
        if 1 not in self.labels or 0 not in self.labels:
            raise ValueError(
                f"MCTargets: labels need at least one true (1) and one false (0), got {list(self.labels)}"
            )


@dataclass(frozen=True, kw_only=True)
class TruthfulQAItem:
    """A question with MC1 targets (exactly one true) and MC2 targets (one or more true)."""

    id: str
    question: str
    mc1: MCTargets
    mc2: MCTargets
    context: str = ""

    def __post_init__(self) -> None:
        if sum(self.mc1.labels) != 1:
            raise ValueError(
                f"TruthfulQAItem {self.id!r}: mc1 must have exactly one true label, got {list(self.mc1.labels)}"
            )


@dataclass(frozen=True, kw_only=True)
class OpenQAItem:
    """An open-domain question with every acceptable gold answer (NQ-style)."""

    id: str
    question: str
    answers: tuple[str, ...]
    context: str = ""


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
