"""Atomic training checkpoints: weights (safetensors), optimizer, scheduler, sampler and RNG states.

A checkpoint is the directory ``checkpoints/step-XXXXXXXX``. It is written as a hidden temporary
directory next to it and renamed into place when complete, so a run killed at any instant leaves either
the previous set of checkpoints or a complete new one; ``latest_checkpoint`` ignores temporaries.
Every process saves its own RNG state (dropout and router jitter draw from it); everything else is
replicated and saved once. Non-weight state is saved with ``torch.save`` as plain tensors and lists and
read back with ``weights_only=True``, so loading a checkpoint never unpickles code.
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn

from adamoe.utils.io import atomic_save_json, atomic_write_bytes

WEIGHTS_FILE = "weights.safetensors"
BUFFERS_FILE = "buffers.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "trainer_state.pt"
META_FILE = "meta.json"
_STEP_DIR = re.compile(r"step-(\d+)")


def rng_state() -> dict[str, Any]:
    """torch, python and numpy global RNG states as weights_only-loadable values."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore torch, Python and NumPy RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def _to_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _read(path: Path) -> Any:
    if not path.is_file():
        raise ValueError(f"checkpoint: missing file {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def persistent_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """State that is not a parameter but changes in training (e.g. a sigmoid-bias router's bias)."""
    params = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    return {k: v for k, v in model.state_dict().items() if k not in params}


def checkpoint_dir(root: Path, step: int) -> Path:
    """The folder of the checkpoint at ``step`` under ``root``."""
    return root / f"step-{step:08d}"


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


def tmp_dir(root: Path, step: int) -> Path:
    """The staging folder a checkpoint at ``step`` is written to before its atomic rename."""
    return root / f".tmp-step-{step:08d}"


def write_rank_rng(tmp: Path, rank: int) -> None:
    """Save this process's RNG states into the staging folder (one file per rank)."""
    atomic_write_bytes(tmp / f"rng-rank{rank}.pt", _to_bytes(rng_state()))


def write_main(
    tmp: Path,
    *,
    model: nn.Module,
    trainable: list[str],
    save_all: bool,
    optimizer: torch.optim.Optimizer,
    trainer_state: dict[str, Any],
    meta: dict[str, Any],
) -> None:
    """The replicated part of a checkpoint (main process only)."""
    params = dict(model.named_parameters())
    names = list(params) if save_all else trainable
    weights = {n: params[n].detach().to("cpu").contiguous().clone() for n in names}
    atomic_write_bytes(tmp / WEIGHTS_FILE, save(weights))
    buffers = {n: t.detach().to("cpu").contiguous().clone() for n, t in persistent_buffers(model).items()}
    if buffers:
        atomic_write_bytes(tmp / BUFFERS_FILE, save(buffers))
    atomic_write_bytes(tmp / OPTIMIZER_FILE, _to_bytes(optimizer.state_dict()))
    atomic_write_bytes(tmp / STATE_FILE, _to_bytes(trainer_state))
    atomic_save_json(tmp / META_FILE, meta)


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


def load_weights(model: nn.Module, path: Path) -> list[str]:
    """Copy the checkpoint's weights (and buffers) into ``model``; returns the parameter names loaded."""
    file = path / WEIGHTS_FILE
    if not file.is_file():
        raise ValueError(f"checkpoint: missing file {file}")
    weights = load_file(str(file))
    params = dict(model.named_parameters())
    unknown = sorted(set(weights) - set(params))
    if unknown:
        raise ValueError(f"checkpoint: {file} has parameters this model lacks, e.g. {unknown[0]}")
    with torch.no_grad():
        for name, tensor in weights.items():
            if params[name].shape != tensor.shape:
                raise ValueError(
                    f"checkpoint: {name} has shape {tuple(tensor.shape)}, the model {tuple(params[name].shape)}"
                )
            params[name].copy_(tensor)
        buffer_file = path / BUFFERS_FILE
        if buffer_file.is_file():
            model.load_state_dict(load_file(str(buffer_file)), strict=False)
    return list(weights)


def load_optimizer_state(path: Path) -> dict[str, Any]:
    """The optimizer state dict saved in checkpoint ``path``."""
    return _read(path / OPTIMIZER_FILE)


def load_trainer_state(path: Path) -> dict[str, Any]:
    """The trainer state saved in checkpoint ``path``."""
    return _read(path / STATE_FILE)


def load_rank_rng(path: Path, rank: int) -> dict[str, Any]:
    """Process ``rank``'s RNG states from checkpoint ``path``; a one-line error when absent."""
    file = path / f"rng-rank{rank}.pt"
    if not file.is_file():
        raise ValueError(
            f"checkpoint: no RNG state for process {rank} in {path} (resume with the same number of processes)"
        )
    return _read(file)


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON metadata of checkpoint ``path``."""
    return json.loads((path / META_FILE).read_text())
