"""Run ``adamoe bench``'s sections and attach the provenance every benchmark JSON carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from adamoe.bench.decode import bench_decode
from adamoe.bench.model import bench_model
from adamoe.bench.provenance import stamped
from adamoe.bench.settings import BenchSettings
from adamoe.bench.training import bench_null_saving, bench_training, choices

__all__ = ["LAYER_SECTIONS", "SECTIONS", "run_all"]

LAYER_SECTIONS = ("training", "null_saving", "decode")
SECTIONS = (*LAYER_SECTIONS, "model", "faults")

_RUNNERS: dict[str, Callable[[BenchSettings], dict[str, Any]]] = {
    "training": bench_training,
    "null_saving": bench_null_saving,
    "decode": bench_decode,
    "model": lambda s: bench_model(s.model, threads=s.threads),
    "faults": lambda s: _faults(s),
}


def _faults(s: BenchSettings) -> dict[str, Any]:
    """Minor faults per step at the training shape, default vs tuned malloc (:mod:`.faults`: counts in
    child processes, so not in the default sections)."""
    from adamoe.bench.faults import bench_faults

    return bench_faults(
        tokens=s.tokens,
        hidden=s.hidden,
        ffn=s.ffn,
        steps=s.repeats,
        warmup=s.warmup,
        threads=s.threads,
        seed=s.seed,
    )


def run_all(s: BenchSettings, *, sections: tuple[str, ...] = LAYER_SECTIONS) -> dict[str, Any]:
    """Run the named sections on ``s.threads`` torch threads (restored after); the results by section,
    the settings, the choices the default (``auto``) backend made on the way, and ``provenance``."""
    unknown = [name for name in sections if name not in _RUNNERS]
    if unknown:
        raise ValueError(f"sections: unknown {unknown}; expected some of {', '.join(SECTIONS)}")

    def run() -> dict[str, Any]:
        out: dict[str, Any] = {"settings": asdict(s)}
        out |= {name: _RUNNERS[name](s) for name in sections}
        return {**out, "default_backend": choices()}

    return stamped(s.threads, run)
