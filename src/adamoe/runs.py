"""Run directories, YAML configs with ``key.sub=value`` overrides, and seeding for every entry point.

Each run writes everything it produces into one directory: the resolved config, metrics (JSON),
plots (PNG) and a report, so a run can be inspected or compared later without re-running it.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from adamoe.utils.io import atomic_write_text


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; CPU runs are then bitwise reproducible."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_config(path: str | os.PathLike[str] | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a YAML mapping (or start empty) and apply ``a.b=value`` overrides (values parsed as YAML)."""
    config: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"--config: file {p} does not exist")
        loaded = yaml.safe_load(p.read_text())
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ValueError(f"--config: {p} must hold a YAML mapping, got {type(loaded).__name__}")
        config = loaded
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"--set: expected key=value, got {item!r}")
        key, raw = item.split("=", 1)
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ValueError(f"--set: {key!r} descends into {part!r}, which is not a mapping")
            node = nxt
        node[parts[-1]] = yaml.safe_load(raw)
    return config


def make_run_dir(root: str | os.PathLike[str], verb: str, run_dir: str | None = None) -> Path:
    """A fresh directory ``root/<verb>-<timestamp>`` (or the given one, created if missing)."""
    if run_dir:
        path = Path(run_dir)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{verb}-{stamp}"
        n = 1
        while path.exists():
            path = Path(root) / f"{verb}-{stamp}-{n}"
            n += 1
    path.mkdir(parents=True, exist_ok=True)
    return path


FAILED_MARKER = "FAILED"
"""File written into a run directory whose run raised; it holds the error's one-line message."""


@contextmanager
def run_directory(root: str | os.PathLike[str], verb: str, run_dir: str | None = None) -> Iterator[Path]:
    """:func:`make_run_dir` for the body of a run that may fail.

    On an exception the directory is removed if this run created it and it holds nothing but
    ``config.yaml`` (an early failure leaves no husk behind); otherwise (checkpoints, caches, a resumed
    folder) it is kept and marked with a ``FAILED`` file naming the error. A success removes a stale mark.
    """
    existed = run_dir is not None and Path(run_dir).exists()
    path = make_run_dir(root, verb, run_dir)
    (path / FAILED_MARKER).unlink(missing_ok=True)
    try:
        yield path
    except BaseException as exc:
        if not existed and {p.name for p in path.iterdir()} <= {"config.yaml"}:
            shutil.rmtree(path, ignore_errors=True)
        else:
            message = (str(exc).splitlines() or [""])[0]
            atomic_write_text(path / FAILED_MARKER, f"{type(exc).__name__}: {message}\n")
        raise


def save_run_config(run_dir: Path, config: dict[str, Any]) -> Path:
    return atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=True))


def pick(config: dict[str, Any], allowed: dict[str, Any], *, section: str) -> dict[str, Any]:
    """Merge ``config`` over ``allowed`` defaults, refusing unknown keys with a one-line error.

    Untyped; the verbs use typed :class:`adamoe.utils.config.Config` classes instead (kept for the demo).
    """
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"{section}: unknown key(s) {unknown}; expected some of {sorted(allowed)}")
    return {**allowed, **config}
