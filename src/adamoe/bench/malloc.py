"""glibc malloc tunables for the benchmark and training processes: keep freed tensor memory for reuse.

Why (issue 20): torch's CPU allocator takes every tensor from ``malloc``. glibc serves a block of at
least ``M_MMAP_THRESHOLD`` bytes (dynamic, at most 32 MiB by default) with a fresh ``mmap`` and gives it
back with ``munmap`` on free, and it trims the top of its heap back to the OS once more than
``M_TRIM_THRESHOLD`` is free there. A training step allocates and frees the same large activations and
gradients every step, so the kernel unmaps them, then faults and zero-fills every page again on the next
step: tens of thousands of minor page faults per MoE step (counted by
:mod:`adamoe.bench.faults`; docs/performance.md). Databases and servers with the same pattern set these
three knobs at start-up (mallopt(3)); this module does it through ``ctypes`` for the entry points that
opt in (``adamoe bench``, ``adamoe train``, ``benchmarks/*.py``):

- ``M_MMAP_THRESHOLD`` = 1 GiB: blocks below it come from the heap and are reused after free (setting it
  also turns glibc's dynamic threshold off); one-off blocks of 1 GiB or more still go back to the OS;
- ``M_TRIM_THRESHOLD`` = 2 GiB - 1: up to that much free memory at the heap top is kept, not returned;
- ``M_ARENA_MAX`` = 1: one heap for all threads. Other arenas live in 64 MiB heaps that cannot hold a
  large tensor (it falls back to ``mmap``), and each arena would keep its own peak.

The cost is memory: the process keeps its peak heap (the RSS no longer drops after a step), which is what
a training loop re-uses anyway. ``ADAMOE_MALLOC_TUNING=0`` turns the call into a no-op, and so is every
platform without glibc (musl, macOS, Windows). Call it early: arenas that threads already attached to
stay as they are.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from typing import Any

__all__ = ["SETTINGS", "tune_malloc", "tuning_state"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # <malloc.h>
SETTINGS: dict[str, tuple[int, int]] = {
    "M_MMAP_THRESHOLD": (M_MMAP_THRESHOLD, 1 << 30),
    "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, 2**31 - 1),
    "M_ARENA_MAX": (M_ARENA_MAX, 1),
}
"""name -> (mallopt parameter, value): the settings :func:`tune_malloc` applies (module docstring)."""
ENV_OFF = "ADAMOE_MALLOC_TUNING"

_STATE: dict[str, Any] | None = None


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc on Linux, else None."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def tune_malloc() -> dict[str, Any]:
    """Apply :data:`SETTINGS` once per process; returns what happened (also kept for :func:`tuning_state`).

    ``{"applied": True, "settings": {name: value}}`` when glibc accepted every setting; otherwise
    ``applied`` is False with ``reason`` (not glibc, turned off by ``ADAMOE_MALLOC_TUNING=0``, or the
    settings glibc refused). Idempotent: later calls return the first call's record without calling
    ``mallopt`` again.
    """
    global _STATE
    if _STATE is not None:
        return _STATE
    libc = None if os.environ.get(ENV_OFF, "1") == "0" else _glibc()
    if libc is None:
        reason = f"{ENV_OFF}=0" if os.environ.get(ENV_OFF, "1") == "0" else "not glibc"
        _STATE = {"applied": False, "reason": reason}
        return _STATE
    refused = [name for name, (param, value) in SETTINGS.items() if libc.mallopt(param, value) != 1]
    values = {name: value for name, (_, value) in SETTINGS.items() if name not in refused}
    _STATE = {"applied": not refused, "settings": values}
    if refused:
        _STATE["reason"] = f"glibc refused {', '.join(refused)}"
    return _STATE


def tuning_state() -> dict[str, Any] | None:
    """The record of this process's :func:`tune_malloc` call, or None if it was never called (defaults)."""
    return _STATE
