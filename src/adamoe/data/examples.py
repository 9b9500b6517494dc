"""The multiple-choice example: the one record every data source produces and every scorer consumes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MCExample"]


@dataclass(frozen=True, kw_only=True)
class MCExample:
    """One multiple-choice item, scored lm-eval style by the log-likelihood of each choice.

    Standard mode (``continuation is None``): request ``i`` is ``(context, delimiter + choices[i])``;
    the choices are the continuations.

    Partial mode (``continuation`` set, WinoGrande style): the choice is inserted into the context
    and the *shared* continuation is scored, request ``i`` is
    ``(context + choices[i], delimiter + continuation)``. Length normalisation then uses
    ``len(context + choices[i])`` like lm-eval's ``doc_to_choice`` strings for that task.

    ``scores`` (optional, one float per choice) is the credit each choice earns when it is the model's
    pick, for tasks whose own metric is not "the label or nothing": BIG-bench's
    ``multiple_choice_grade`` credits ``target_scores[argmax choice]``, so an item with several correct
    choices (or partial credit) scores 1 for any of them. ``label`` is then the first best-scoring
    choice (the MC1 view); :attr:`golds` lists every best-scoring choice and :meth:`credit` gives the
    task's own per-item score. Without ``scores`` both reduce to the plain label.
    """

    id: str
    context: str
    choices: list[str]
    label: int
    task: str
    continuation: str | None = None
    scores: tuple[float, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Copy so the frozen example never aliases a caller's mutable list.
        object.__setattr__(self, "choices", [str(c) for c in self._as_list(self.choices)])
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"MCExample.id: expected a non-empty string, got {self.id!r}")
        if not isinstance(self.context, str):
            raise ValueError(
                f"MCExample.context ({self.id}): expected a string, got {type(self.context).__name__}"
            )
        if len(self.choices) < 2:
            raise ValueError(
                f"MCExample.choices ({self.id}): expected at least 2 choices, got {len(self.choices)}"
            )
        if isinstance(self.label, bool) or not isinstance(self.label, int):
            raise ValueError(f"MCExample.label ({self.id}): expected an int index, got {self.label!r}")
        if not 0 <= self.label < len(self.choices):
            raise ValueError(
                f"MCExample.label ({self.id}): expected 0 <= label < {len(self.choices)}, got {self.label}"
            )
        if self.continuation is not None and not isinstance(self.continuation, str):
            raise ValueError(f"MCExample.continuation ({self.id}): expected a string or None")
        if self.scores is not None:
            self._check_scores()

    def _check_scores(self) -> None:
        try:
            scores = tuple(float(s) for s in self.scores)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"MCExample.scores ({self.id}): expected one number per choice") from None
        if len(scores) != len(self.choices):
            raise ValueError(
                f"MCExample.scores ({self.id}): expected {len(self.choices)} scores (one per choice), "
                f"got {len(scores)}"
            )
        if scores[self.label] != max(scores):
            raise ValueError(
                f"MCExample.label ({self.id}): choice {self.label} scores {scores[self.label]}, "
                f"expected a best-scoring choice (max {max(scores)})"
            )
        object.__setattr__(self, "scores", scores)

    @property
    def golds(self) -> tuple[int, ...]:
        """Indices of every correct choice: the best-scoring ones, or just ``label`` without scores."""
        if self.scores is None:
            return (self.label,)
        best = max(self.scores)
        return tuple(i for i, s in enumerate(self.scores) if s == best)

    def credit(self, choice: int) -> float:
        """The task's own score for picking ``choice``: ``scores[choice]``, else 1.0 iff it is the label."""
        if self.scores is None:
            return float(choice == self.label)
        return self.scores[choice]

    def _as_list(self, value: Any) -> list[Any]:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ValueError(
                f"MCExample.choices ({self.id}): expected a list of strings, got {type(value).__name__}"
            )
        return list(value)

    def requests(self, target_delimiter: str = " ") -> list[tuple[str, str]]:
        """The (context, continuation) string pairs lm-eval would build for this item."""
        if self.continuation is None:
            return [(self.context, f"{target_delimiter}{c}") for c in self.choices]
        return [(self.context + c, f"{target_delimiter}{self.continuation}") for c in self.choices]

    def norm_lengths(self) -> list[int]:
        """Character lengths acc_norm divides by (lm-eval: ``len`` of each ``doc_to_choice`` string)."""
        if self.continuation is None:
            return [len(c) for c in self.choices]
        return [len(self.context + c) for c in self.choices]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the example (``continuation`` only when set)."""
        out: dict[str, Any] = {
            "id": self.id,
            "task": self.task,
            "context": self.context,
            "choices": list(self.choices),
            "label": self.label,
        }
        if self.continuation is not None:
            out["continuation"] = self.continuation
        if self.scores is not None:
            out["scores"] = list(self.scores)
        if self.meta:
            out["meta"] = dict(self.meta)
        return out

    @classmethod
    def from_dict(cls, row: Mapping[str, Any], *, task: str | None = None, index: int = 0) -> MCExample:
        """Inverse of :meth:`to_dict`; ``task``/``index`` fill a missing task name or id."""
        return cls(
            id=str(row.get("id") or f"{task or row.get('task') or 'item'}-{index}"),
            context=row["context"],
            choices=row["choices"],
            label=row["label"],
            task=str(task or row.get("task") or "local"),
            continuation=row.get("continuation"),
            scores=None if row.get("scores") is None else tuple(row["scores"]),
            meta=dict(row.get("meta") or {}),
        )
