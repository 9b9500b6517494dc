"""The sweep's knobs (TrainConfig fields, with aliases) and the points it runs: full grid or one at a time."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adamoe.rbench.config import check_model_spec, parse_dims
from adamoe.rbench.data.generated import SENTIMENT_DOMAINS
from adamoe.utils.config import Config, option, require

__all__ = ["DEFAULT_GRID", "KNOB_ALIASES", "SweepConfig", "grid_points", "point_label"]

KNOB_ALIASES: dict[str, str] = {"aux": "aux_coef", "aux_loss_coef": "aux_coef", "z_loss": "z_loss_coef"}

DEFAULT_GRID: dict[str, list[Any]] = {
    "dropout": [0.0, 0.1],
    "expert_dropout": [0.0, 0.2],
    "freeze_router": [False, True],
    "aux_coef": [0.0, 1e-3],
    "z_loss_coef": [0.0, 1e-3],
}


@dataclass(kw_only=True)
class SweepConfig(Config):
    """Model, knob grid, mode, fine-tuning settings and data, and the dimensions each point runs."""

    section = "sweep"
    model: str = "smollm2-moefy"
    """The MoE whose recipes are swept: the moefied SmolLM2 (experts that differ, unlike smollm2-moe)."""
    grid: dict[str, list[Any]] = dataclasses.field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_GRID.items()}
    )
    mode: str = option("one_at_a_time", choices=("grid", "one_at_a_time"))
    include_base: bool = True
    train: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"trainable": "full", "max_steps": 20, "batch_size": 4, "lr": 1e-4}
    )
    train_data: list[str] = dataclasses.field(default_factory=lambda: ["sentiment", "nli"])
    train_n: int = option(64, ge=1)
    dims: list[str] = dataclasses.field(default_factory=lambda: ["adversarial", "ood"])

    def check(self) -> None:
        from adamoe.train import TrainConfig

        check_model_spec(self.model)
        self.grid = self._checked_grid({f.name for f in dataclasses.fields(TrainConfig)})
        require(bool(self.train_data), "sweep.train_data: expected some of 'sentiment[:domain]', 'nli'")
        for src in self.train_data:
            head, _, domain = str(src).partition(":")
            require(
                head in ("sentiment", "nli") and (not domain or domain in SENTIMENT_DOMAINS),
                f"sweep.train_data: expected 'nli' or 'sentiment[:{'|'.join(SENTIMENT_DOMAINS)}]', got {src!r}",
            )
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


def point_label(point: Mapping[str, Any] | None, base: Mapping[str, Any] | None) -> str:
    """Short name of a point: the knobs that differ from the baseline ('baseline' if none, 'no fine-tune')."""
    if point is None:
        return "no fine-tune"
    diff = [f"{k}={v}" for k, v in point.items() if base is None or base.get(k) != v]
    return ", ".join(diff) if diff else "baseline"
