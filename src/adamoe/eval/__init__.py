"""Evaluation: score multiple-choice tasks, record routing, and report the paper's columns.

- scoring: :mod:`.scoring` (entry point) over :mod:`.encoding` (lm-eval tokenisation, ``pad_token_id``),
  :mod:`.requests` (one item per example), :mod:`.batching` (prefix-sharing forwards) and
  :mod:`.records` (results); :mod:`.cache` (resumable per-item cache, model + routing fingerprint).
- figures: :mod:`.evaluate` (Acc, Load, FLOPs per task), :mod:`.flops` (whole-model FLOPs per token),
  :mod:`.significance` (intervals, paired tests, chance), :mod:`.dial` (the null-bias compute dial).
- suites of models and sets: :mod:`.evaluator` (one model under evaluation: cached scoring and generation
  per stage, per-item routing, output signatures), :mod:`.generation`, :mod:`.estimates` (per-item scores →
  intervals and differences), :mod:`.routing_drift` (a stage against its matched reference),
  :mod:`.answers` (closed-book answer matching).
- output: :mod:`.report` (the one Markdown/HTML/JSON renderer), :mod:`.plots` (PNG figures, no pyplot).
- :mod:`.settings` (run-wide evaluator settings and factory), :mod:`.lm_eval_model` /
  :mod:`.lm_eval_compare` (lm-eval integration and agreement checks).
"""
