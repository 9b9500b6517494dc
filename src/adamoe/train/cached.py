"""Fine-tuning whose result is kept: train once, then load the trained parameters on every rerun.

Why: a suite that evaluates several models after the same fine-tuning (MoE-RBench) is rerun often;
training again each time costs minutes and, with nondeterministic kernels, need not give the same weights.
The caller names a run by a `key` that hashes everything that changes the trained weights (recipe, seed,
training items, the untrained model's fingerprint); only the trainable parameters are saved
(safetensors) with a JSON record, as one folder ``<folder>-<key>`` renamed into place
(`adamoe.train.final.write_folder`), so a killed run never leaves half a cache behind.

The trainable set is `adamoe.train.params.train_last_layers`: a `TrainConfig.trainable` set limited to
the last N decoder layers, the same rule for a dense and an MoE model (a dense layer and an MoE layer both
train whole). Afterwards the model is in eval mode with nothing requiring grad.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from adamoe.train.config import TrainConfig
from adamoe.train.params import train_last_layers
from adamoe.utils.config import require

__all__ = ["RECORD", "WEIGHTS", "mark_trainable", "restore_trained", "train_cached"]

WEIGHTS = "trained.safetensors"
RECORD = "finetune.json"


def mark_trainable(model: nn.Module, trainable: str, last_layers: int) -> list[str]:
    """Set requires_grad to `trainable` in the last `last_layers` decoder layers (0 = all); returns the
    trainable parameter names, sorted."""
    train_last_layers(model, trainable, last_layers)
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


def restore_trained(model: nn.Module, path: Path) -> None:
    """Copy saved tensors into `model` (every saved name must exist with the same shape; one-line errors)."""
    from safetensors.torch import load_file

    try:
        result = model.load_state_dict(load_file(str(path)), strict=False)
    except RuntimeError as exc:  # a shape mismatch: torch's message spans lines
        raise ValueError(f"{path}: does not fit the model ({str(exc).splitlines()[-1].strip()})") from None
    extra = sorted(result.unexpected_keys)
    require(not extra, f"{path}: holds parameters the model lacks: {extra[:3]}")


def _save(model: nn.Module, names: Sequence[str], folder: Path, record: Mapping[str, Any]) -> None:
    from safetensors.torch import save_file

    from adamoe.train.final import write_folder

    def save(_: nn.Module, path: Path) -> None:
        params = dict(model.named_parameters())
        save_file({n: params[n].detach().contiguous() for n in names}, str(path / WEIGHTS))
        (path / RECORD).write_text(json.dumps(record, indent=2))

    write_folder(folder, model, save)


def train_cached(
    model: nn.Module,
    tokenizer: Any,
    items: Sequence[Any],
    config: TrainConfig,
    *,
    trainable: str,
    last_layers: int,
    key: str,
    folder: Path | None,
    record: Mapping[str, Any] | None = None,
    on_train: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune `model` in place on `items` with `config` ((prompt, target) pairs or MCExamples, as
    `adamoe.train.loop.train` takes them for ``config.objective``), or load the result cached
    under ``<folder>-<key>``; returns a JSON-ready record (`record` merged in, e.g. the recipe).

    `on_train` is called just before real training starts (progress, counting in the tests).
    """
    names = mark_trainable(model, trainable, last_layers)
    target = None if folder is None else folder.with_name(f"{folder.name}-{key}")
    if target is not None and (target / WEIGHTS).is_file():
        restore_trained(model, target / WEIGHTS)
        model.requires_grad_(False)  # evaluation from here on
        saved = json.loads((target / RECORD).read_text())
        return {**saved, "cached": True, "folder": str(target)}
    if on_train is not None:
        on_train()
    from adamoe.train.loop import train

    started = time.perf_counter()
    # "adapters" = whatever requires grad now: the set mark_trainable chose
    result = train(model, tokenizer, list(items), dataclasses.replace(config, trainable="adapters"))
    model.eval()
    out = {
        "key": key,
        "steps": int(result.steps),
        "final_loss": result.final_loss,
        "train_items": len(items),
        "trainable_tensors": len(names),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "seconds": round(time.perf_counter() - started, 1),
        **(record or {}),
    }
    if target is not None:
        _save(model, names, target, out)
    model.requires_grad_(False)  # evaluation from here on
    return {**out, "cached": False, "folder": None if target is None else str(target)}
