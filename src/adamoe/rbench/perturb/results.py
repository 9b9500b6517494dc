"""What an attack returns: model verdicts, edits, one result per text, a report over a set.

Each `AttackResult` carries what a person needs to audit it — original → perturbed text, the edits
(old → new word), the verdict before → after (correct, margin and predicted choice when known) and the
words protected as names — and `AttackResult.record()` / `AttackReport.samples()` give that as plain
dicts for the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

__all__ = ["AttackReport", "AttackResult", "Edit", "Prediction", "mc_prediction", "summarise"]


class Prediction(NamedTuple):
    """Model verdict on one input: is it right, by how much (margin > 0 ⇔ right), and the choice it picked."""

    correct: bool
    margin: float
    label: int | None = None


def mc_prediction(loglikelihoods: Sequence[float], label: int) -> Prediction:
    """Margin of the gold choice over the best other choice; correct iff strictly ahead.

    The predicted label is the arg-max choice, the first one on a tie (as lm-eval counts it).
    """
    if not 0 <= label < len(loglikelihoods) or len(loglikelihoods) < 2:
        raise ValueError(f"label: expected an index into {len(loglikelihoods)} (>= 2) choices, got {label}")
    others = [v for i, v in enumerate(loglikelihoods) if i != label]
    margin = float(loglikelihoods[label]) - float(max(others))
    best = max(range(len(loglikelihoods)), key=lambda i: (float(loglikelihoods[i]), -i))
    return Prediction(correct=margin > 0, margin=margin, label=best)


@dataclass(frozen=True, kw_only=True)
class Edit:
    """One word edit: position, kind of edit, old and new word."""

    word_index: int
    kind: str
    old: str
    new: str


@dataclass(frozen=True, kw_only=True)
class AttackResult:
    """One attacked text: original, perturbed, verdicts before/after, edits, queries spent.

    The fields after `queries` are optional so results saved before they existed still load.
    """

    key: str
    original: str
    perturbed: str
    clean_correct: bool
    adv_correct: bool
    edits: tuple[Edit, ...]
    budget: int
    queries: int
    clean_margin: float | None = None
    adv_margin: float | None = None
    clean_label: int | None = None
    adv_label: int | None = None
    protected: tuple[str, ...] = ()
    """Words kept intact as (parts of) names."""
    rejected: tuple[tuple[str, int], ...] = ()
    """(reason, count) of word substitutes the constraints turned down (distinct position and word)."""

    @property
    def success(self) -> bool:
        """The attack flipped a correct prediction."""
        return self.clean_correct and not self.adv_correct

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready and lossless (`from_dict` inverts it): for caches of attack results."""
        out = asdict(self)
        out["protected"] = list(self.protected)
        out["rejected"] = [list(x) for x in self.rejected]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AttackResult:
        """Inverse of `to_dict`; keys that are not fields (a frozen set's task, gold) are ignored and the
        optional fields may be missing (results saved before they existed)."""
        plain = {f.name for f in fields(cls)} - {"edits", "protected", "rejected"}
        return cls(
            **{k: v for k, v in d.items() if k in plain},
            edits=tuple(Edit(**e) for e in d["edits"]),
            protected=tuple(d.get("protected", ())),
            rejected=tuple((str(r), int(c)) for r, c in d.get("rejected", ())),
        )

    def record(self) -> dict[str, Any]:
        """A flat, JSON-ready audit record: original → perturbed, prediction before → after, edits."""
        out = asdict(self)
        out["edits"] = [f"{e.old} → {e.new} ({e.kind})" for e in self.edits]
        out["protected"] = list(self.protected)
        out["rejected"] = dict(self.rejected)
        out["success"] = self.success
        return out


@dataclass(frozen=True, kw_only=True)
class AttackReport:
    """Accuracy before/after the attack and success rate over a set, with every result."""

    clean_accuracy: float
    robust_accuracy: float
    attack_success_rate: float
    n: int
    mean_edits_successful: float
    mean_queries: float
    results: tuple[AttackResult, ...] = field(repr=False)

    def summary(self) -> dict[str, float]:
        """The headline numbers as a flat dict."""
        return {
            "clean_accuracy": self.clean_accuracy,
            "robust_accuracy": self.robust_accuracy,
            "attack_success_rate": self.attack_success_rate,
            "n": float(self.n),
            "mean_edits_successful": self.mean_edits_successful,
            "mean_queries": self.mean_queries,
        }

    def samples(self, n: int = 5, *, successful_only: bool = True) -> list[dict[str, Any]]:
        """Up to `n` audit records (`AttackResult.record`), successful attacks only by default, in input order."""
        picked = [r for r in self.results if r.success or not successful_only]
        return [r.record() for r in picked[:n]]


def summarise(results: Sequence[AttackResult]) -> AttackReport:
    """Clean accuracy, robust accuracy (right after the attack) and success rate over results: the share
    of the clean-correct items the attack flipped, NaN when none was correct (nothing to attack)."""
    if not results:
        raise ValueError("results: expected at least one attack result, got none")
    n_clean = sum(r.clean_correct for r in results)
    succ = [len(r.edits) for r in results if r.success]
    return AttackReport(
        clean_accuracy=n_clean / len(results),
        robust_accuracy=sum(r.adv_correct for r in results) / len(results),
        attack_success_rate=len(succ) / n_clean if n_clean else math.nan,
        n=len(results),
        mean_edits_successful=float(sum(succ) / len(succ)) if succ else math.nan,
        mean_queries=float(sum(r.queries for r in results) / len(results)),
        results=tuple(results),
    )
