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
    """Per-item outcome; ``pred``/``pred_norm`` follow lm-eval's argmax (first maximum wins)."""

    id: str
    task: str
    label: int
    loglikelihoods: tuple[float, ...]
    is_greedy: tuple[bool, ...]
    norm_lengths: tuple[int, ...]
    pred: int
    pred_norm: int
    cached: bool = False

    @property
    def correct(self) -> bool:
        return self.pred == self.label

    @property
    def correct_norm(self) -> bool:
        return self.pred_norm == self.label

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
            "correct": self.correct,
            "correct_norm": self.correct_norm,
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
        return float(np.mean([r.correct for r in self.records])) if self.records else float("nan")

    @property
    def acc_norm(self) -> float:
        return float(np.mean([r.correct_norm for r in self.records])) if self.records else float("nan")

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
                "acc": float(np.mean([r.correct for r in rs])),
                "acc_norm": float(np.mean([r.correct_norm for r in rs])),
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
