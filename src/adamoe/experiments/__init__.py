"""Library stages of the project's experiments (above eval and train, below commands).

- :mod:`adamoe.experiments.moe_model`: the shared-plus-routed SmolLM2 MoE (built once, cached) and the
  real text it is calibrated and checked on.
- :mod:`adamoe.experiments.demo`: the stages of ``adamoe demo`` (build, fine-tune, evaluate, dial, report).
- :mod:`adamoe.experiments.harness`, :mod:`~adamoe.experiments.tables`, :mod:`~adamoe.experiments.molora`,
  :mod:`~adamoe.experiments.moe`: the paper's two experiments at small scale and their tables.
"""
