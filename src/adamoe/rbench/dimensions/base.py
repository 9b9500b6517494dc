"""What every bench dimension shares: its result record, the protocol, metric direction.

A dimension (safety, hallucination, adversarial, ood — one module each) has a config dataclass, a
`load(limit=, seed=)` that reads all its data up front (so bad sources fail before any model runs)
and a `run(evaluator, data, seed=)` that scores one model through `ModelEvaluator` and returns a
`DimensionResult`. Dense and MoE models go through exactly the same calls. Routing drift of the
stages of a dimension is computed by `adamoe.eval.routing_drift.routing_report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from adamoe.eval.evaluator import ModelEvaluator

__all__ = [
    "CHAT_CHOICES",
    "DIMENSIONS",
    "Dimension",
    "DimensionResult",
    "metric_direction",
]

DIMENSIONS: tuple[str, ...] = ("safety", "hallucination", "adversarial", "ood")
CHAT_CHOICES: tuple[bool | str, ...] = (True, False, "auto")
"""`chat` settings: always, never, or 'auto' = when the tokenizer has a chat template."""

# Which way is better, by metric name (prefix match); the reports print it beside each metric.
_HIGHER = (
    "refusal_rate", "correct", "clean_acc", "robust_acc", "adv_acc", "id_acc", "surface_acc",
    "domain_acc", "acc",
)  # fmt: skip
_LOWER = (
    "over_refusal_rate",
    "toxicity",
    "asr",
    "surface_gap",
    "domain_gap",
    "gap",
    "wrong",
    "drop",
    "degenerate",
)


def metric_direction(name: str) -> str:
    """'↑' if higher is better, '↓' if lower is better, '' if neither is known."""
    if any(name.startswith(p) for p in _LOWER):
        return "↓"
    if any(name.startswith(p) for p in _HIGHER):
        return "↑"
    return ""


@dataclass(kw_only=True)
class DimensionResult:
    """Headline metrics (the side-by-side table), details (per category / shift / attack), routing.

    `items` holds the per-item scores behind a metric (`adamoe.eval.estimates.item_scores`) so the
    report can give its n and interval and pair it with another model's; `estimates` holds each
    metric's interval estimate (filled from `items` by `finalize`, or set directly for derived
    metrics such as gaps). `signature` (set by the runner) fingerprints every output the model gave.
    """

    dimension: str
    metrics: dict[str, float | None]
    details: dict[str, Any] = field(default_factory=dict)
    routing: dict[str, Any] | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """CPU seconds of the process (all threads) while the dimension ran; see `runner.evaluate_model`."""
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    estimates: dict[str, dict[str, Any]] = field(default_factory=dict)
    signature: str | None = None

    def finalize(self, *, seed: int) -> DimensionResult:
        """Interval estimates of every metric with per-item scores; metric values follow the estimates."""
        from adamoe.eval.estimates import estimate, stream

        for name, entry in self.items.items():
            if name in self.estimates:
                continue
            est = estimate(entry, rng=stream(seed, "ci", self.dimension, name))
            if est is not None:
                self.estimates[name] = est.to_dict()
        for name, est in self.estimates.items():
            self.metrics[name] = est["value"]
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in metrics.json."""
        return {
            "metrics": dict(self.metrics),
            "estimates": self.estimates,
            "items": self.items,
            "signature": self.signature,
            "details": self.details,
            "routing": self.routing,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
        }


class Dimension(Protocol):
    """A reliability dimension: loads its data once, then runs on each model the same way."""

    name: str

    def load(self, *, limit: int | None, seed: int) -> Any:
        """Read (or generate) every data set up front; `limit` caps each set."""
        ...

    def sizes(self, data: Any) -> dict[str, int]:
        """Items per set, for the report and the empty-data check."""
        ...

    def run(self, ev: ModelEvaluator, data: Any, *, seed: int) -> DimensionResult:
        """Score one model on the loaded data the same way for every model."""
        ...
