"""Library stages of the project's experiments (above eval and train, below commands).

Imports run one way, bottom up (no circles): :mod:`~adamoe.experiments.tables` (tables from per-item
records) <- :mod:`~adamoe.experiments.harness` (task lists, config, data, training, scoring, run store,
report) <- :mod:`~adamoe.experiments.dial` (compute dial, routing plots) <- the experiments:

- :mod:`adamoe.experiments.molora`, :mod:`~adamoe.experiments.moe`: the paper's two experiments at
  small scale, on its own tasks (offline).
- :mod:`adamoe.experiments.demo` (+ :mod:`~adamoe.experiments.demo_report`): ``adamoe demo``, a reduced
  MoE table on the same helpers.
- :mod:`adamoe.experiments.moe_model`: the shared-plus-routed SmolLM2 MoE (built once, cached) and the
  offline text it is calibrated and checked on.
"""
