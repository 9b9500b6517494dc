"""Where and when a benchmark ran: the fields every benchmark JSON carries (issue 20).

Why: a ratio means little without the code it timed (commit, and whether the tree had uncommitted
changes), the machine (CPU model, cores), the moment (UTC time) and how busy the machine was (the load
average before and after the run). ``git`` or ``/proc`` being absent (an installed wheel, macOS) gives
``"unknown"`` rather than an error: the benchmark still runs and says what it could not learn.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "PROVENANCE_FIELDS",
    "cpu_model",
    "emit",
    "git_state",
    "load_average",
    "provenance",
    "stamped",
    "with_provenance",
]

PROVENANCE_FIELDS = (
    "commit",
    "dirty",
    "cpu_model",
    "cpus",
    "date_utc",
    "load_average",
    "torch",
    "threads",
    "python",
    "adamoe",
    "malloc",
)
"""The keys of :func:`provenance` (tests check that every benchmark JSON has them all)."""

_HERE = Path(__file__).resolve().parent


def git_state(folder: Path = _HERE) -> tuple[str, bool | None]:
    """(``git rev-parse HEAD``, tracked files modified?) of the checkout holding ``folder``.

    ``("unknown", None)`` outside a git checkout or without git.
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, dirty


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first ``model name`` of ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def provenance() -> dict[str, Any]:
    """Commit (+ dirty flag), CPU model and count, UTC date/time, load average, torch and its thread
    count, Python and adamoe versions, and the process's malloc tuning (None: glibc defaults; see
    :mod:`adamoe.bench.malloc`, it changes how often a step faults memory in), read now (call it at the
    start of a run)."""
    from adamoe import __version__
    from adamoe.bench.malloc import tuning_state

    commit, dirty = git_state()
    return {
        "commit": commit,
        "dirty": dirty,
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average": load_average(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "adamoe": __version__,
        "malloc": tuning_state(),
    }


def with_provenance(result: dict[str, Any], start: dict[str, Any]) -> dict[str, Any]:
    """``result`` with ``provenance``: ``start`` (from :func:`provenance` before the run) plus the load
    average after it, so a reader sees whether the machine got busy during the run."""
    return {"provenance": {**start, "load_average_end": load_average()}, **result}


def stamped(threads: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()`` on ``threads`` torch threads (restored after), its result :func:`with_provenance`: the
    one way a benchmark produces the record it prints and writes."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start = provenance()
        result = run()
    finally:
        torch.set_num_threads(before)
    return with_provenance(result, start)


def emit(result: dict[str, Any], table: str, json_path: str | os.PathLike[str] | None = None) -> None:
    """Print ``table`` and the JSON of ``result``; also write the JSON to ``json_path`` (atomically)."""
    from adamoe.utils.io import atomic_save_json

    print(table)
    print(json.dumps(result, indent=2, default=str))
    if json_path is not None:
        atomic_save_json(json_path, result)
