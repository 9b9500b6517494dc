"""What the scorer hands back: one :class:`MCRecord` per item, an :class:`MCResult` for a run, and the
:class:`BatchInfo` each forward announces to hooks (routing recorders count exactly the real tokens).

Kept apart from the scorer so reports, caches and the reliability suite can read results without
importing the batching machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from adamoe.data.examples import MCExample

__all__ = ["BatchInfo", "MCRecord", "MCResult", "OnBatch"]


@dataclass(frozen=True)
class BatchInfo:
    """What one forward call is about to process, for routing-statistics recorders.

    ``kind``: "prefix" (shared contexts, left-padded), "suffix" (choice tokens continuing a prefix
    KV cache; ``attention_mask`` then spans past + new tokens) or "full" (whole requests, left-padded).
    ``input_ids`` is (B, L); ``attention_mask`` (B, L), or (B, P + L) for "suffix", marks real tokens,
    so a recorder can drop padding from its counts (its last L columns belong to ``input_ids``).
    ``example_ids`` names the example of each of the B rows.
    """

    kind: Literal["prefix", "suffix", "full"]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    example_ids: tuple[str, ...]


OnBatch = Callable[[BatchInfo], "AbstractContextManager[Any] | None"]


@dataclass(frozen=True, kw_only=True)
class MCRecord:
    """Per-item outcome; ``pred``/``pred_norm`` follow lm-eval's argmax (first maximum wins).

    Scoring follows the task's own metric. ``golds`` are every correct choice and ``credits`` the score
    each choice earns when picked (:attr:`MCExample.golds` / :meth:`MCExample.credit`): for BIG-bench
    that is ``multiple_choice_grade``, credit = ``target_scores`` of the argmax choice, so on an item with
    several correct choices any of them counts. ``correct`` = the argmax is a gold; ``credit`` = its
    score, which equals ``float(correct)`` whenever scores are 0/1. An item with one gold and no scores
    reduces to lm-eval's ``pred == label``, bit for bit.
    """

    id: str
    task: str
    label: int
    loglikelihoods: tuple[float, ...]
    is_greedy: tuple[bool, ...]
    norm_lengths: tuple[int, ...]
    pred: int
    pred_norm: int
    golds: tuple[int, ...] = ()
    """Every correct choice; empty means ``(label,)``."""
    credits: tuple[float, ...] | None = None
    """Per-choice credit when picked (one per choice); None means 1.0 for a gold, else 0.0."""
    cached: bool = False

    def _credit_of(self, choice: int) -> float:
        if self.credits is not None:
            return self.credits[choice]
        return float(choice in (self.golds or (self.label,)))

    @property
    def correct(self) -> bool:
        return self.pred in (self.golds or (self.label,))

    @property
    def correct_norm(self) -> bool:
        return self.pred_norm in (self.golds or (self.label,))

    @property
    def credit(self) -> float:
        """The task's own score of this item: the credit of the (raw log-likelihood) argmax choice."""
        return self._credit_of(self.pred)

    @property
    def credit_norm(self) -> float:
        """The credit of the length-normalised argmax choice."""
        return self._credit_of(self.pred_norm)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the record (with ``correct`` and ``correct_norm``)."""
        return {
            "id": self.id,
            "task": self.task,
            "label": self.label,
            "loglikelihoods": list(self.loglikelihoods),
            "is_greedy": list(self.is_greedy),
            "pred": self.pred,
            "pred_norm": self.pred_norm,
            "golds": list(self.golds or (self.label,)),
            "correct": self.correct,
            "correct_norm": self.correct_norm,
            "credit": self.credit,
            "credit_norm": self.credit_norm,
        }

    @classmethod
    def build(
        cls,
        example: MCExample,
        loglikelihoods: Sequence[float],
        is_greedy: Sequence[bool],
        *,
        cached: bool = False,
    ) -> MCRecord:
        """The record of one scored example: predictions by raw and length-normalised loglikelihood."""
        lls = np.asarray(loglikelihoods, dtype=np.float64)
        lengths = np.asarray(example.norm_lengths(), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):  # an empty choice divides by 0, as in lm-eval
            pred_norm = int(np.argmax(lls / lengths))
        return cls(
            id=example.id,
            task=example.task,
            label=example.label,
            loglikelihoods=tuple(float(x) for x in loglikelihoods),
            is_greedy=tuple(bool(x) for x in is_greedy),
            norm_lengths=tuple(example.norm_lengths()),
            pred=int(np.argmax(lls)),
            pred_norm=pred_norm,
            golds=tuple(example.golds),
            credits=None if example.scores is None else tuple(float(s) for s in example.scores),
            cached=cached,
        )


@dataclass(kw_only=True)
class MCResult:
    """All records plus the counters a benchmark or a resume test needs."""

    records: list[MCRecord]
    n_requests: int = 0
    n_forward: int = 0
    n_cached: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    routing: dict[str, dict[str, np.ndarray]] | None = None
    """example id -> layer -> packed routing sums (``adamoe.stats`` layout); None unless recorded."""
    routing_shapes: dict[str, tuple[int, int]] = field(default_factory=dict)
    """layer -> (true experts E, null experts m) of the packs in ``routing``."""

    @property
    def acc(self) -> float:
        """Mean credit (the task's own scoring; for 0/1 scores, the fraction whose argmax is a gold)."""
        return float(np.mean([r.credit for r in self.records])) if self.records else float("nan")

    @property
    def acc_norm(self) -> float:
        """Mean credit of the length-normalised argmax."""
        return float(np.mean([r.credit_norm for r in self.records])) if self.records else float("nan")

    @property
    def requests_per_second(self) -> float:
        return self.n_requests / self.seconds if self.seconds > 0 else float("nan")

    def by_task(self) -> dict[str, dict[str, float]]:
        """Per task: n, acc and acc_norm over this result's records."""
        out: dict[str, dict[str, float]] = {}
        for task in sorted({r.task for r in self.records}):
            rs = [r for r in self.records if r.task == task]
            out[task] = {
                "n": len(rs),
                "acc": float(np.mean([r.credit for r in rs])),
                "acc_norm": float(np.mean([r.credit_norm for r in rs])),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: accuracies, request and cache counts, timing."""
        return {
            "acc": self.acc,
            "acc_norm": self.acc_norm,
            "n": len(self.records),
            "n_requests": self.n_requests,
            "n_forward": self.n_forward,
            "n_cached": self.n_cached,
            "seconds": self.seconds,
            "by_task": self.by_task(),
            "records": [r.to_dict() for r in self.records],
        }
