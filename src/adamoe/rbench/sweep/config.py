"""The sweep's knobs (TrainConfig fields, with aliases), its two arms (MoE, dense), seeds and points."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adamoe.rbench.config import check_model_spec, parse_dims
from adamoe.rbench.data.generated import SENTIMENT_DOMAINS
from adamoe.utils.config import Config, option, require

__all__ = [
    "DEFAULT_GRID",
    "KNOB_ALIASES",
    "MOE_ONLY_KNOBS",
    "QUICK_MODELS",
    "SweepConfig",
    "dense_recipe",
    "grid_points",
    "point_label",
]

KNOB_ALIASES: dict[str, str] = {"aux": "aux_coef", "aux_loss_coef": "aux_coef", "z_loss": "z_loss_coef"}

DEFAULT_GRID: dict[str, list[Any]] = {
    "dropout": [0.0, 0.1],
    "expert_dropout": [0.0, 0.2],
    "freeze_router": [False, True],
    "aux_coef": [0.0, 1e-3],
    "z_loss_coef": [0.0, 1e-3],
}

MOE_ONLY_KNOBS = frozenset(
    {"expert_dropout", "freeze_router", "aux_coef", "aux_coef_end", "aux_schedule", "aux_loss", "z_loss_coef"}
)
"""TrainConfig fields that act on experts or routers only: a dense model trains the same whatever their
value, so its arm is not re-run for them (its cell says "n/a (dense)")."""

QUICK_MODELS = ("tiny-mixtral", "tiny-llama")
"""(MoE, dense) used by `--quick` when `model` / `dense` are left at their defaults: seconds per point."""

_DEFAULT_MODELS = ("smollm2-moefy", "smollm2")


@dataclass(kw_only=True)
class SweepConfig(Config):
    """Models of both arms, knob grid, mode, seeds, training overrides and data, the dimensions run."""

    section = "sweep"
    model: str = _DEFAULT_MODELS[0]
    """The MoE whose recipes are swept: the moefied SmolLM2 (experts that differ, unlike smollm2-moe)."""
    dense: str = _DEFAULT_MODELS[1]
    """The dense arm: the model the MoE was built from, trained with the same recipes."""
    seeds: int = option(2, ge=1)
    """Runs per (arm, recipe): seed i = suite seed + i drives model init and data order (own streams)."""
    grid: dict[str, list[Any]] = dataclasses.field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_GRID.items()}
    )
    mode: str = option("one_at_a_time", choices=("grid", "one_at_a_time"))
    include_base: bool = True
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    """TrainConfig fields overriding the suite's `finetune` recipe (lr, steps, batch, trainable layers)."""
    train_data: list[str] | None = None
    """None: the suite's `finetune.tasks` train splits (real BIG-bench; generated sets under --quick);
    or generated smoke sources 'sentiment[:domain]' / 'nli' (train_n items each)."""
    train_n: int = option(64, ge=1)
    dims: list[str] = dataclasses.field(default_factory=lambda: ["adversarial", "ood"])

    def check(self) -> None:
        from adamoe.train import TrainConfig

        check_model_spec(self.model)
        check_model_spec(self.dense)
        require(self.model != self.dense, f"sweep.dense: expected a dense model other than {self.model!r}")
        self.grid = self._checked_grid({f.name for f in dataclasses.fields(TrainConfig)})
        for src in self.train_data or []:
            head, _, domain = str(src).partition(":")
            require(
                head in ("sentiment", "nli") and (not domain or domain in SENTIMENT_DOMAINS),
                f"sweep.train_data: expected 'nli' or 'sentiment[:{'|'.join(SENTIMENT_DOMAINS)}]', got {src!r} "
                "(or null for the finetune tasks)",
            )
        require(self.train_data != [], "sweep.train_data: expected null or some of 'sentiment', 'nli'")
        self.dims = parse_dims(self.dims)
        for point in grid_points(self.grid, mode=self.mode):  # every point must make a valid TrainConfig
            try:
                TrainConfig.from_dict({**self.train, **point, "progress": False})
            except (ValueError, TypeError) as exc:
                raise ValueError(f"sweep point {point}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SweepConfig:
        """From the raw `sweep` section of the suite config (unknown keys list the valid ones)."""
        return cls.from_mapping(data)

    def apply_quick(self) -> None:
        """`--quick`: tiny models for arms left at their defaults, generated training data if none given."""
        if self.model == _DEFAULT_MODELS[0]:
            self.model = QUICK_MODELS[0]
        if self.dense == _DEFAULT_MODELS[1]:
            self.dense = QUICK_MODELS[1]
        if self.train_data is None:
            self.train_data = ["sentiment", "nli"]

    def _checked_grid(self, known: set[str]) -> dict[str, list[Any]]:
        """The grid with aliases resolved: every knob a TrainConfig field, given once, with values."""
        require(bool(self.grid), "sweep.grid: expected a non-empty mapping knob -> list of values")
        grid: dict[str, list[Any]] = {}
        for key, values in self.grid.items():
            name = KNOB_ALIASES.get(key, key)
            require(
                name in known,
                f"sweep.grid: unknown knob {key!r}; expected a TrainConfig field such as {sorted(DEFAULT_GRID)}",
            )
            require(name not in grid, f"sweep.grid: knob {name!r} is given twice (aliases included)")
            require(
                isinstance(values, list) and bool(values),
                f"sweep.grid.{key}: expected a non-empty list of values, got {values!r}",
            )
            grid[name] = list(values)
        return grid


def grid_points(grid: Mapping[str, Sequence[Any]], *, mode: str = "grid") -> list[dict[str, Any]]:
    """Knob settings in a stable order: the full product, or baseline + one knob changed at a time."""
    keys = list(grid)
    if mode == "grid":
        return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    if mode != "one_at_a_time":
        raise ValueError(f"mode: expected 'grid' or 'one_at_a_time', got {mode!r}")
    base = {k: grid[k][0] for k in keys}
    points = [base]
    for k in keys:
        points += [{**base, k: v} for v in grid[k][1:]]
    return points


def dense_recipe(point: Mapping[str, Any] | None, base: Mapping[str, Any]) -> dict[str, Any] | None:
    """The recipe the dense arm runs for `point`: its MoE-only knobs put back to the baseline's values."""
    if point is None:
        return None
    return {k: (base[k] if k in MOE_ONLY_KNOBS else v) for k, v in point.items()}


def point_label(point: Mapping[str, Any] | None, base: Mapping[str, Any] | None) -> str:
    """Short name of a point: the knobs that differ from the baseline ('baseline' if none, 'no fine-tune')."""
    if point is None:
        return "no fine-tune"
    diff = [f"{k}={v}" for k, v in point.items() if base is None or base.get(k) != v]
    return ", ".join(diff) if diff else "baseline"
