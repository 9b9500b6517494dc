"""The four dimensions by name: one place that knows which class runs which dimension."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from adamoe.rbench.dimensions.adversarial import AdversarialDimension
from adamoe.rbench.dimensions.base import Dimension
from adamoe.rbench.dimensions.hallucination import HallucinationDimension
from adamoe.rbench.dimensions.ood import OODDimension, TrainFn
from adamoe.rbench.dimensions.safety import SafetyDimension
from adamoe.rbench.judges import RefusalJudge, ToxicityScorer

if TYPE_CHECKING:
    from adamoe.rbench.config import RBenchConfig

__all__ = ["build_dimensions"]


def build_dimensions(
    config: RBenchConfig,
    *,
    judge: RefusalJudge | None = None,
    toxicity_scorer: ToxicityScorer | None = None,
    train_fn: TrainFn | None = None,
) -> dict[str, Dimension]:
    """The configured dimensions in order (pluggable judge, toxicity scorer and trainer)."""
    factories: dict[str, Callable[[], Dimension]] = {
        "safety": lambda: SafetyDimension(config.safety, judge=judge, toxicity_scorer=toxicity_scorer),
        "hallucination": lambda: HallucinationDimension(config.hallucination),
        "adversarial": lambda: AdversarialDimension(config.adversarial),
        "ood": lambda: OODDimension(config.ood, train_fn=train_fn),
    }
    return {name: factories[name]() for name in config.dims}
