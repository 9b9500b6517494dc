"""The training run's logs: JSONL (one record per line, appended as steps finish, cut back on resume),
and optionally an Accelerate tracker (TensorBoard, wandb, trackio) fed the same numbers.

The JSONL files stay the record of truth (resume cuts them back to the checkpoint); trackers are a view.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from adamoe.train import checkpoint as ckpt
from adamoe.train.config import TrainConfig
from adamoe.utils.io import atomic_save_json, atomic_write_text

__all__ = [
    "append_jsonl",
    "check_tracker",
    "prepare_output",
    "tracker_config",
    "tracker_values",
    "truncate_jsonl",
]

LOG_FILE = "log.jsonl"
EVAL_FILE = "evals.jsonl"
CONFIG_FILE = "train_config.json"
CHECKPOINTS = "checkpoints"

#: tracker name -> (module that must import, pip package that provides it)
_TRACKER_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "trackio": ("trackio", "trackio"),
}


def check_tracker(name: str | None) -> None:
    """One-line error with the pip command when the tracker ``name`` is not installed (None = no tracker)."""
    if name is None:
        return
    if name not in _TRACKER_PACKAGES:
        raise ValueError(f"log_with: expected one of {', '.join(_TRACKER_PACKAGES)}, got {name!r}")
    module, package = _TRACKER_PACKAGES[name]
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"log_with: {name} is not installed; pip install {package} (or drop --log-with)")


def tracker_values(record: Mapping[str, Any]) -> dict[str, float]:
    """The numeric scalars of a log record (trackers take numbers only; ``grad_norm`` may be None)."""
    return {k: float(v) for k, v in record.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def tracker_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run config flattened to the scalar hyper-parameters trackers accept (``a.b`` keys)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in tracker_config(value).items()})
        elif isinstance(value, bool | int | float | str):
            flat[key] = value
    return flat


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append `record` as one JSON line and flush, so a killed run keeps every finished step."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()


def truncate_jsonl(path: Path, *, keep_through: int) -> None:
    """Keep the records of steps <= ``keep_through`` (a killed run may have logged past its checkpoint,
    and may have died mid-line). A missing file is left missing."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and int(record.get("step", 0)) <= keep_through:
            kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


def prepare_output(out_dir: Path, config: TrainConfig, accelerator: Accelerator) -> Path | None:
    """Create the run directory (rank 0); on resume, pick the latest checkpoint and cut the logs back to it.

    Returns that checkpoint (None for a fresh run). A directory that already holds a run is refused
    unless ``config.resume`` is set.
    """
    root = out_dir / CHECKPOINTS
    latest = ckpt.latest_checkpoint(root)
    has_run = latest is not None or (out_dir / LOG_FILE).exists()
    if has_run and not config.resume:
        raise ValueError(
            f"output_dir: {out_dir} already holds a run; set resume=True or choose a new directory"
        )
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt.clean_temporaries(root)
        keep = ckpt.read_meta(latest)["step"] if latest is not None else 0
        for name in (LOG_FILE, EVAL_FILE):
            truncate_jsonl(out_dir / name, keep_through=keep)
        atomic_save_json(out_dir / CONFIG_FILE, config.to_dict())
    accelerator.wait_for_everyone()
    return latest
