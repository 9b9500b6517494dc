"""Sweep over the training-recipe knobs MoE-RBench studies, for an MoE and its dense model, over seeds.

Knobs are `adamoe.train.TrainConfig` fields — dropout, expert_dropout, freeze_router, aux_coef and
z_loss_coef by default (aliases: aux -> aux_coef, z_loss -> z_loss_coef); any other TrainConfig
field may be swept too. `mode: one_at_a_time` (default) runs the first value of every knob as the
baseline plus one point per other value of a single knob, the way the paper varies one setting at a
time; `mode: grid` runs the full product; `include_base` adds the models without fine-tuning.

Each point trains both arms — the MoE (`model`) and the dense model (`dense`) — with the suite's
`finetune` recipe plus the point's knobs on the same real training items (the finetune tasks' train
splits; generated under `--quick`), for `seeds` seeds, then runs the chosen dimensions. The dense arm
skips knobs that only act on experts and routers. Output: `sweep.json`, `sweep.md`, `sweep.html` —
rows = recipes, per metric MoE, dense and MoE − dense with 95% intervals over items and seeds.

`config`: knobs, arms, points; `run`: the runs; `stats`: intervals and paired deltas; `report`: tables.
"""

from adamoe.rbench.sweep.config import (
    DEFAULT_GRID,
    KNOB_ALIASES,
    MOE_ONLY_KNOBS,
    SweepConfig,
    dense_recipe,
    grid_points,
    point_label,
)
from adamoe.rbench.sweep.report import sweep_table, sweep_tables, write_sweep
from adamoe.rbench.sweep.run import data_order, plan_runs, prepare_sweep, run_sweep, train_pairs
from adamoe.rbench.sweep.stats import DENSE_NA, aligned_scores, summarise

__all__ = [
    "DEFAULT_GRID",
    "DENSE_NA",
    "KNOB_ALIASES",
    "MOE_ONLY_KNOBS",
    "SweepConfig",
    "aligned_scores",
    "data_order",
    "dense_recipe",
    "grid_points",
    "plan_runs",
    "point_label",
    "prepare_sweep",
    "run_sweep",
    "summarise",
    "sweep_table",
    "sweep_tables",
    "train_pairs",
    "write_sweep",
]
