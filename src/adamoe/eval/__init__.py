"""Evaluation: score multiple-choice tasks, record routing, and report the paper's columns.

- scoring: :mod:`.scoring` (entry point) over :mod:`.encoding` (lm-eval tokenisation, ``pad_token_id``),
  :mod:`.requests` (one item per example), :mod:`.batching` (prefix-sharing forwards) and
  :mod:`.records` (results); :mod:`.cache` (resumable per-item cache, model + routing fingerprint).
- figures: :mod:`.evaluate` (Acc, Load, FLOPs per task), :mod:`.flops` (whole-model FLOPs per token),
  :mod:`.significance` (intervals, paired tests, chance), :mod:`.dial` (the null-bias compute dial).
- output: :mod:`.report` (the one Markdown/HTML/JSON renderer), :mod:`.plots` (PNG figures, no pyplot).
- :mod:`.settings` (run-wide evaluator settings and factory), :mod:`.lm_eval_model` /
  :mod:`.lm_eval_compare` (lm-eval integration and agreement checks).
"""
