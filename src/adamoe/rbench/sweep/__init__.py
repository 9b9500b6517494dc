"""Sweep over the training-recipe knobs MoE-RBench studies: each point fine-tunes, then runs the bench.

Knobs are `adamoe.train.TrainConfig` fields — dropout, expert_dropout, freeze_router, aux_coef and
z_loss_coef by default (aliases: aux -> aux_coef, z_loss -> z_loss_coef); any other TrainConfig
field may be swept too. `mode: grid` runs the full product; `mode: one_at_a_time` (default) runs the
first value of every knob as the baseline plus one point per other value of a single knob, the way
the paper varies one setting at a time. `include_base` adds the model without fine-tuning.

Each point: a fresh model (same seed), `train_fn(model, tokenizer, train_pairs, TrainConfig)`
(default `adamoe.train.train`, injectable for tests), then the chosen dimensions through the same
runner as `adamoe rbench`. A finished point is saved as `sweep/<id>.json` (atomic) and skipped when
the sweep is re-run in the same directory; item caches make an interrupted point cheap to redo.
Output: one table, `sweep.json`, `sweep.md`, `sweep.html` (`adamoe.rbench.report.sweep`).

`config`: the knobs and points; `run`: training and evaluating each point.
"""

from adamoe.rbench.report.sweep import sweep_table, write_sweep
from adamoe.rbench.sweep.config import DEFAULT_GRID, KNOB_ALIASES, SweepConfig, grid_points, point_label
from adamoe.rbench.sweep.run import prepare_sweep, run_sweep, train_pairs

__all__ = [
    "DEFAULT_GRID",
    "KNOB_ALIASES",
    "SweepConfig",
    "grid_points",
    "point_label",
    "prepare_sweep",
    "run_sweep",
    "sweep_table",
    "train_pairs",
    "write_sweep",
]
