"""The reliability dimensions: one module each, the shared protocol in `base`, the name table in `registry`.

- `safety`: refusal of harmful requests, over-refusal, toxicity of sampled continuations, hhh_alignment
  and bbq_lite_json;
- `hallucination`: BIG-bench truthfulness tasks (truthful_qa, known_unknowns, misconceptions,
  fact_checker); TruthfulQA MC1/MC2 and open-domain QA on request;
- `adversarial`: NLI-style items under character- and word-level attacks;
- `ood`: accuracy under style shifts and on other data sets of the same task (`ood_scores`: the gaps);
- `tasks`: BIG-bench multiple-choice tasks scored inside a dimension (credit, chance, per subtask).
"""

from adamoe.rbench.dimensions.base import (
    CHAT_CHOICES,
    DIMENSIONS,
    Dimension,
    DimensionResult,
    metric_direction,
    spread,
    take,
)
from adamoe.rbench.dimensions.registry import build_dimensions

__all__ = [
    "CHAT_CHOICES",
    "DIMENSIONS",
    "Dimension",
    "DimensionResult",
    "build_dimensions",
    "metric_direction",
    "spread",
    "take",
]
