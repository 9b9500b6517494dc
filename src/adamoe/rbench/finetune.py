"""The paper's protocol before evaluation: every model fine-tuned with the same recipe and budget.

MoE-RBench fine-tunes each dense/MoE pair the same way before measuring reliability; comparing a trained
dense model with MoEs fresh from conversion would measure the conversion, not the architecture. Here
every model of the suite gets the same `FinetuneConfig`: the same real training items (the *train*
parts of offline tasks, `adamoe.data.load_task`; the suite evaluates only their test parts, which the
hash partition keeps disjoint), optimizer steps, batch, learning rate, aux-loss coefficient
and trainable set (``trainable`` limited to the last ``train_last_layers`` decoder layers, input
embedding frozen, so backward stops early; a dense layer and an MoE layer are both trained whole).
Training and its cache are `adamoe.train.cached.train_cached`; this module only chooses the recipe and
names the run: the trained parameters go to ``<dir>/<model>-<key>/``, ``key`` hashing the recipe, the
seed, the training items and the untrained model's fingerprint, so a rerun with the same settings loads
them instead of training, and any change retrains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from adamoe.train.config import TRAINABLE_SETS
from adamoe.utils.config import Config, option, require

__all__ = ["FINETUNE_TASKS", "FinetuneConfig", "finetune_key", "finetune_model", "load_train_pairs"]

FINETUNE_TASKS = ["rte", "sst2", "arc_easy"]
"""The in-distribution tasks of the adversarial (RTE, SST-2) and OOD (RTE, ARC-Easy) dimensions, as the
paper fine-tunes on the task before testing robustness; their *train* parts only."""
_FORMAT = 1  # bump when training or saving changes for the same settings


@dataclass(kw_only=True)
class FinetuneConfig(Config):
    """The one recipe every model of the suite is fine-tuned with (`enabled: false` evaluates as loaded)."""

    section = "finetune"
    enabled: bool = True
    tasks: list[str] = field(default_factory=lambda: list(FINETUNE_TASKS))
    per_task: int = option(64, ge=1)
    """Training items per task (deterministic train split)."""
    max_steps: int = option(16, ge=1)
    batch_size: int = option(8, ge=1)
    lr: float = option(3e-5, gt=0)
    max_length: int = option(256, ge=8)
    trainable: str = option("full", choices=TRAINABLE_SETS)
    train_last_layers: int = option(4, ge=0)
    """Only the last N decoder layers train (0 = all), the same N for every model."""
    aux_coef: float = option(1e-2, ge=0)
    cache_dir: str | None = None
    """Where trained parameters are kept; default <run cache>/finetuned (a rerun loads them)."""

    def check(self) -> None:
        require(
            bool(self.tasks),
            f"{self._name('tasks')}: expected at least one task (--set finetune.tasks=[...])",
        )

    def recipe(self) -> dict[str, Any]:
        """Everything that changes the trained weights (not where they are cached)."""
        return {k: v for k, v in asdict(self).items() if k not in ("enabled", "cache_dir")}


def load_train_pairs(cfg: FinetuneConfig) -> list[tuple[str, str]]:
    """(prompt, correct answer) pairs from each task's train split, task by task (one-line errors)."""
    from adamoe.data.loaders import load_task
    from adamoe.train import mc_to_pairs

    pairs: list[tuple[str, str]] = []
    for task in cfg.tasks:
        items = load_task(task, split="train", limit=cfg.per_task)
        require(bool(items), f"finetune.tasks: {task!r} has no training items")
        pairs += mc_to_pairs(items)
    return pairs


def finetune_key(cfg: FinetuneConfig, *, seed: int, pairs: Sequence[tuple[str, str]], base: str) -> str:
    """12 hex digits naming one (recipe, seed, training items, untrained model fingerprint)."""
    text = json.dumps(
        {"recipe": cfg.recipe(), "seed": seed, "pairs": list(pairs), "base": base, "format": _FORMAT},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def finetune_model(
    model: nn.Module,
    tokenizer: Any,
    cfg: FinetuneConfig,
    *,
    pairs: Sequence[tuple[str, str]],
    seed: int,
    folder: Path | None,
    on_train: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune `model` in place with the suite's recipe, or load the result cached under `folder`
    (`adamoe.train.cached.train_cached`); returns a JSON-ready record with the recipe.

    `on_train` is called just before real training starts (progress, counting in the tests).
    """
    from adamoe.eval.cache import model_fingerprint
    from adamoe.train import TrainConfig
    from adamoe.train.cached import train_cached

    key = finetune_key(cfg, seed=seed, pairs=pairs, base=model_fingerprint(model))
    config = TrainConfig(
        lr=cfg.lr,
        max_steps=cfg.max_steps,
        batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        aux_coef=cfg.aux_coef,
        aux_coef_end=cfg.aux_coef,
        seed=seed,
        progress=False,
    )
    return train_cached(
        model,
        tokenizer,
        pairs,
        config,
        trainable=cfg.trainable,
        last_layers=cfg.train_last_layers,
        key=key,
        folder=folder,
        record={"recipe": cfg.recipe()},
        on_train=on_train,
    )
