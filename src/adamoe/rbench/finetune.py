"""The paper's protocol before evaluation: every model fine-tuned with the same recipe and budget.

MoE-RBench fine-tunes each dense/MoE pair the same way before measuring reliability; comparing a trained
dense model with MoEs fresh from conversion would measure the conversion, not the architecture. Here
every model of the suite gets the same `FinetuneConfig`: the same real training items (the *train*
parts of offline tasks, `adamoe.data.load_task`; the suite evaluates only their test parts, which the
hash partition keeps disjoint), optimizer steps, batch, learning rate, aux-loss coefficient
and trainable set (``trainable`` limited to the last ``train_last_layers`` decoder layers, input
embedding frozen, so backward stops early; a dense layer and an MoE layer are both trained whole).
Training is `adamoe.train.train`; this module only chooses the parameters and caches the result.

Cache: the trained parameters (only those, as safetensors) go to ``<dir>/<model>-<key>/``; ``key``
hashes the recipe, the seed, the training items and the untrained model's fingerprint, so a rerun with
the same settings loads them instead of training, and any change retrains.
"""

from __future__ import annotations

import hashlib
import json
import time
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
_WEIGHTS = "trained.safetensors"


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


def mark_trainable(model: nn.Module, cfg: FinetuneConfig) -> list[str]:
    """Set requires_grad to the recipe's set; returns the trainable parameter names (sorted)."""
    from adamoe.train.params import train_last_layers

    train_last_layers(model, cfg.trainable, cfg.train_last_layers)
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


def _restore(model: nn.Module, path: Path) -> None:
    """Copy the saved tensors into `model` (every saved name must exist with the same shape)."""
    from safetensors.torch import load_file

    try:
        result = model.load_state_dict(load_file(str(path)), strict=False)
    except RuntimeError as exc:  # a shape mismatch: torch's message spans lines
        raise ValueError(
            f"finetune: {path} does not fit the model ({str(exc).splitlines()[-1].strip()})"
        ) from None
    extra = sorted(result.unexpected_keys)
    require(not extra, f"finetune: {path} holds parameters the model lacks: {extra[:3]}")


def _save(model: nn.Module, names: Sequence[str], folder: Path, record: dict[str, Any]) -> None:
    """Trained tensors + record, written as one folder renamed into place (`adamoe.train.final.write_folder`)."""
    from safetensors.torch import save_file

    from adamoe.train.final import write_folder

    def save(_: nn.Module, path: Path) -> None:
        params = dict(model.named_parameters())
        save_file({n: params[n].detach().contiguous() for n in names}, str(path / _WEIGHTS))
        (path / "finetune.json").write_text(json.dumps(record, indent=2))

    write_folder(folder, model, save)


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
    """Fine-tune `model` in place (or load its cached result from `folder`); returns a JSON-ready record.

    `on_train` is called just before real training starts (progress, counting in the tests).
    """
    from adamoe.eval.cache import model_fingerprint
    from adamoe.train import TrainConfig

    base = model_fingerprint(model)
    key = finetune_key(cfg, seed=seed, pairs=pairs, base=base)
    names = mark_trainable(model, cfg)
    target = None if folder is None else folder.with_name(f"{folder.name}-{key}")
    if target is not None and (target / _WEIGHTS).is_file():
        _restore(model, target / _WEIGHTS)
        model.requires_grad_(False)  # evaluation from here on
        record = json.loads((target / "finetune.json").read_text())
        return {**record, "cached": True, "folder": str(target)}
    if on_train is not None:
        on_train()
    from adamoe.train import train

    config = TrainConfig(
        lr=cfg.lr,
        max_steps=cfg.max_steps,
        batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        aux_coef=cfg.aux_coef,
        aux_coef_end=cfg.aux_coef,
        seed=seed,
        trainable="adapters",  # = the set `mark_trainable` chose, identical in kind for every model
        progress=False,
    )
    started = time.perf_counter()
    result = train(model, tokenizer, list(pairs), config)
    model.eval()
    record = {
        "key": key,
        "steps": int(result.steps),
        "final_loss": result.final_loss,
        "train_items": len(pairs),
        "trainable_tensors": len(names),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "seconds": round(time.perf_counter() - started, 1),
        "recipe": cfg.recipe(),
    }
    if target is not None:
        _save(model, names, target, record)
    model.requires_grad_(False)  # evaluation from here on
    return {**record, "cached": False, "folder": None if target is None else str(target)}
