"""Atomic training checkpoints through Accelerate's ``save_state``/``load_state``.

A checkpoint is the directory ``checkpoints/step-XXXXXXXX`` holding what ``Accelerator.save_state``
writes (model weights, optimizer, every process's RNG states -- python, numpy, torch CPU and all CUDA
devices -- and our registered :class:`TrainerState`: step, scheduler, sampler), plus ``meta.json``. Going
through Accelerate is what makes the same code save DDP, FSDP (sharded or full state dicts) and
DeepSpeed runs. It is written as a hidden temporary directory next to its final name and renamed into
place when complete (``meta.json`` last), so a run killed at any instant leaves either the previous set
of checkpoints or a complete new one; ``latest_checkpoint`` ignores temporaries.

Outside FSDP/DeepSpeed only the trainable parameters and persistent buffers are kept in the weights file
(a LoRA run of a 47B model must not write 90 GB per checkpoint): the model is rebuilt the same way
before resuming and the frozen weights come from there.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch import nn

from adamoe.utils.io import atomic_save_json

META_FILE = "meta.json"
_STEP_DIR = re.compile(r"step-(\d+)")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def rng_file(rank: int) -> str:
    """The file Accelerate writes process ``rank``'s RNG states to."""
    return f"random_states_{rank}.pkl"


class TrainerState:
    """Loop state that is neither model nor optimizer, registered with ``register_for_checkpointing``.

    ``scheduler`` and ``sampler`` are any objects with ``state_dict``/``load_state_dict``.
    """

    def __init__(self, *, scheduler: Any, sampler: Any) -> None:
        self.scheduler = scheduler
        self.sampler = sampler
        self.step = 0
        self.epoch = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])


def _bare(name: str) -> str:
    for prefix in _WRAPPER_PREFIXES:
        while name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def keep_only(model: nn.Module, trainable: list[str]) -> Any:
    """A ``register_save_state_pre_hook`` hook dropping frozen weights from the saved state dicts.

    Keeps ``trainable`` parameters and all persistent buffers (e.g. a sigmoid-bias router's bias, which
    changes in training without being a parameter).
    """
    params = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    keep = set(trainable) | {k for k in model.state_dict() if k not in params}

    def hook(models: list[nn.Module], weights: list[dict[str, Any]], output_dir: str) -> None:
        for state in weights:
            for key in [k for k in state if _bare(k) not in keep]:
                del state[key]

    return hook


def checkpoint_dir(root: Path, step: int) -> Path:
    """The folder of the checkpoint at ``step`` under ``root``."""
    return root / f"step-{step:08d}"


def tmp_dir(root: Path, step: int) -> Path:
    """The staging folder a checkpoint at ``step`` is written to before its atomic rename."""
    return root / f".tmp-step-{step:08d}"


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.fullmatch(path.name)
        if match and path.is_dir() and (path / META_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root``, or None."""
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def save(accelerator: Accelerator, root: Path, step: int, *, meta: dict[str, Any], keep_last: int) -> Path:
    """Write the checkpoint of ``step`` atomically (collective: every process calls it)."""
    tmp = tmp_dir(root, step)
    if accelerator.is_main_process:
        clean_temporaries(root)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    final = checkpoint_dir(root, step)
    if accelerator.is_main_process:
        atomic_save_json(tmp / META_FILE, meta)
        final = publish(root, tmp, step, keep_last=keep_last)
    accelerator.wait_for_everyone()
    return final


def load(accelerator: Accelerator, path: Path) -> None:
    """Load checkpoint ``path`` into everything registered with ``accelerator`` (RNG states last).

    Accelerate skips a missing RNG file with a log line only; resuming with another number of processes
    would then silently change dropout draws, hence the explicit check.
    """
    rank = accelerator.process_index
    if (path / "weights.safetensors").is_file() and not (path / rng_file(0)).is_file():
        raise ValueError(
            f"checkpoint: {path} is in the pre-Accelerate checkpoint format, which this version cannot "
            "resume; start a new run (new --run-dir)"
        )
    if not (path / rng_file(rank)).is_file():
        raise ValueError(
            f"checkpoint: no RNG state for process {rank} in {path} (resume with the same number of processes)"
        )
    accelerator.load_state(str(path), strict=False)


def publish(root: Path, tmp: Path, step: int, *, keep_last: int) -> Path:
    """Rename the finished temporary directory into place and drop all but the last ``keep_last``."""
    final = checkpoint_dir(root, step)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for _, old in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def clean_temporaries(root: Path) -> None:
    """Remove half-written checkpoints left by a killed run."""
    if root.is_dir():
        for path in root.glob(".tmp-step-*"):
            shutil.rmtree(path, ignore_errors=True)


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON metadata of checkpoint ``path``."""
    return json.loads((path / META_FILE).read_text())
