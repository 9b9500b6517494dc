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

The objective is the multiple-choice one (``objective: mc``, `adamoe.train.objective`): the LM loss on
the gold answer's tokens taught the label words rather than the right label (RTE 72% -> 56% with 84% of
answers one label), and its token mean let ARC's ~4-token answers outweigh RTE's one-token labels. Items
are label-balanced per task (``balance_labels``) and the learning rate warms up, then decays linearly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from adamoe.train.config import LR_SCHEDULERS, OBJECTIVES, TRAINABLE_SETS, objective_error
from adamoe.utils.config import Config, option, require

__all__ = ["FINETUNE_TASKS", "FinetuneConfig", "finetune_key", "finetune_model", "load_train_items"]

FINETUNE_TASKS = ["rte", "sst2", "arc_easy"]
"""The in-distribution tasks of the adversarial (RTE, SST-2) and OOD (RTE, ARC-Easy) dimensions, as the
paper fine-tunes on the task before testing robustness; their *train* parts only."""
_FORMAT = 2  # bump when training or saving changes for the same settings


@dataclass(kw_only=True)
class FinetuneConfig(Config):
    """The one recipe every model of the suite is fine-tuned with (`enabled: false` evaluates as loaded).

    ``objective`` defaults to ``mc`` here (the experiments keep ``lm``): the suite scores models by
    comparing the choices' log-likelihoods, so it trains exactly that comparison, each item weighing the
    same (module docstring); ``lm`` reproduces the old recipe.
    """

    section = "finetune"
    enabled: bool = True
    tasks: list[str] = field(default_factory=lambda: list(FINETUNE_TASKS))
    per_task: int = option(64, ge=1)
    """Training items per task (deterministic train split)."""
    balance_labels: bool = True
    """Take each task's items round-robin over gold labels (`adamoe.data.splits.spread`), so no label
    dominates the training set; false = the first `per_task` of the hash order."""
    objective: str = "mc"
    max_steps: int = option(16, ge=1)
    batch_size: int = option(8, ge=1)
    lr: float = option(3e-5, gt=0)
    lr_scheduler: str = option("linear", choices=LR_SCHEDULERS)
    warmup: float = option(0.1, ge=0, lt=1)
    """Share of `max_steps` the learning rate warms up over (rounded to whole steps)."""
    max_length: int = option(256, ge=8)
    trainable: str = option("full", choices=TRAINABLE_SETS)
    train_last_layers: int = option(4, ge=0)
    """Only the last N decoder layers train (0 = all), the same N for every model."""
    aux_coef: float = option(1e-2, ge=0)
    cache_dir: str | None = None
    """Where trained parameters are kept; default <run cache>/finetuned (a rerun loads them)."""

    def check(self) -> None:
        require(self.objective in OBJECTIVES, objective_error(self._name("objective"), self.objective))
        require(
            bool(self.tasks),
            f"{self._name('tasks')}: expected at least one task (--set finetune.tasks=[...])",
        )

    def recipe(self) -> dict[str, Any]:
        """Everything that changes the trained weights (not where they are cached)."""
        return {k: v for k, v in asdict(self).items() if k not in ("enabled", "cache_dir")}


def load_train_items(cfg: FinetuneConfig) -> list[Any]:
    """Each task's training MCExamples (train split; label-balanced with `balance_labels`), task by task."""
    from adamoe.data.loaders import load_task
    from adamoe.data.splits import spread

    items: list[Any] = []
    for task in cfg.tasks:
        if cfg.balance_labels:
            found = spread(load_task(task, split="train"), cfg.per_task, key=lambda ex: str(ex.label))
        else:
            found = load_task(task, split="train", limit=cfg.per_task)
        require(bool(found), f"finetune.tasks: {task!r} has no training items")
        items += found
    return items


def finetune_key(cfg: FinetuneConfig, *, seed: int, items: Sequence[Any], base: str) -> str:
    """12 hex digits naming one (recipe, seed, training items, untrained model fingerprint)."""
    texts = [[ex.requests(), ex.label] for ex in items]
    text = json.dumps(
        {"recipe": cfg.recipe(), "seed": seed, "items": texts, "base": base, "format": _FORMAT},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def finetune_model(
    model: nn.Module,
    tokenizer: Any,
    cfg: FinetuneConfig,
    *,
    items: Sequence[Any],
    seed: int,
    folder: Path | None,
    on_train: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune `model` in place with the suite's recipe on MCExamples `items`, or load the result cached
    under `folder` (`adamoe.train.cached.train_cached`); returns a JSON-ready record with the recipe.

    `on_train` is called just before real training starts (progress, counting in the tests).
    """
    from adamoe.eval.cache import model_fingerprint
    from adamoe.train import TrainConfig
    from adamoe.train.cached import train_cached

    key = finetune_key(cfg, seed=seed, items=items, base=model_fingerprint(model))
    config = TrainConfig(
        objective=cfg.objective,
        lr=cfg.lr,
        lr_scheduler=cfg.lr_scheduler,
        warmup_steps=round(cfg.warmup * cfg.max_steps),
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
        items,
        config,
        trainable=cfg.trainable,
        last_layers=cfg.train_last_layers,
        key=key,
        folder=folder,
        record={"recipe": cfg.recipe()},
        on_train=on_train,
    )
