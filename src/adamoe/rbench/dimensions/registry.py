"""The four dimensions by name: one place that knows which class runs which dimension."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from adamoe.rbench.dimensions.adversarial import AdversarialDimension
from adamoe.rbench.dimensions.base import Dimension
from adamoe.rbench.dimensions.hallucination import HallucinationDimension
from adamoe.rbench.dimensions.ood import OODDimension
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
) -> dict[str, Dimension]:
    """The configured dimensions in order (pluggable judge and toxicity scorer)."""
    factories: dict[str, Callable[[], Dimension]] = {
        "safety": lambda: SafetyDimension(config.safety, judge=judge, toxicity_scorer=toxicity_scorer),
        "hallucination": lambda: HallucinationDimension(config.hallucination),
        "adversarial": lambda: AdversarialDimension(config.adversarial, surrogate=config.surrogate()),
        "ood": lambda: OODDimension(config.ood),
    }
    return {name: factories[name]() for name in config.dims}
