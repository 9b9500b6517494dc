"""Minor page faults per training step, with glibc's default malloc settings and with
:func:`adamoe.bench.malloc.tune_malloc` (the ``faults`` section of ``adamoe bench``, ``benchmarks/faults.py``).

Why count, not time: a minor fault is the kernel mapping and zero-filling a page on first touch, and
their count per step says how much memory the step takes fresh from the OS instead of re-using. The
count (``getrusage`` ``ru_minflt``, all threads of the process) does not depend on machine load, so it is
a valid before/after on a shared machine where timings are not.

Each (setting, variant) runs in a fresh child process (``python -m adamoe.bench.faults``): malloc
settings are per process and the parent may already be tuned, and a training process runs one model,
so variants do not share (and fragment) one heap. Variants: one MoE layer E=8 top-2 at the given shape,
ours on the ``grouped`` and ``torch_grouped_mm`` backends and transformers' ``grouped_mm`` block. The
child runs ``warmup`` fwd+bwd steps, then ``steps`` steps, each step's faults counted on its own (the
warm-up's too, reported apart: the first step faults in the heap the later ones re-use). The ``auto``
backend is left out: its first call times both backends, which is not a step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["VARIANTS", "bench_faults", "count_faults", "faults_table", "minor_faults"]

VARIANTS = ("adamoe_grouped", "adamoe_torch_grouped_mm", "hf_grouped_mm")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def minor_faults() -> int:
    """Minor page faults of this process so far (all threads): ``getrusage(RUSAGE_SELF).ru_minflt``."""
    import resource  # POSIX only: imported here so that the tables of this module load anywhere

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def count_faults(fn: Callable[[], Any], *, calls: int) -> list[int]:
    """Minor faults of each of ``calls`` calls of ``fn`` (callers split off their warm-up calls)."""
    counts = []
    for _ in range(calls):
        before = minor_faults()
        fn()
        counts.append(minor_faults() - before)
    return counts


def _variant_step(variant: str, *, tokens: int, hidden: int, ffn: int, seed: int) -> Callable[[], None]:
    """The fwd+bwd step of one of :data:`VARIANTS` on a seeded (T, H) input and output gradient."""
    import torch

    from adamoe.bench.settings import BenchSettings
    from adamoe.bench.training import hf_block, moe_layer, train_step_fn

    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    backend = "torch_grouped_mm" if variant == "adamoe_torch_grouped_mm" else "grouped"
    s = BenchSettings(seed=seed)
    layer = moe_layer(s, num_experts=8, num_null=0, top_k=2, backend=backend, hidden=hidden, ffn=ffn)
    gen = torch.Generator().manual_seed(seed)
    x, grad = torch.randn(tokens, hidden, generator=gen), torch.randn(tokens, hidden, generator=gen)
    if variant == "hf_grouped_mm":
        block = hf_block(layer, top_k=2, implementation="grouped_mm")
        return train_step_fn(block, x.unsqueeze(0), grad.unsqueeze(0))
    return train_step_fn(layer, x, grad)


def child(args: argparse.Namespace) -> dict[str, Any]:
    """The measurement of one process: tuned first if asked, then one variant's warm-up and counted steps."""
    import resource

    from adamoe.bench.malloc import tune_malloc

    tuning = tune_malloc() if args.tuned else None
    import torch

    torch.set_num_threads(args.threads)
    step = _variant_step(args.variant, tokens=args.tokens, hidden=args.hidden, ffn=args.ffn, seed=args.seed)
    counts = count_faults(step, calls=args.warmup + args.steps)
    return {
        "tuning": tuning,
        "warmup": counts[: args.warmup],
        "per_step": counts[args.warmup :],
        "max_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _run_child(variant: str, *, tuned: bool, **settings: int) -> dict[str, Any]:
    """:func:`child` in a fresh ``python -m adamoe.bench.faults`` (autotune off: no timing inside)."""
    argv = [sys.executable, "-m", "adamoe.bench.faults", "--variant", variant]
    argv += [f"--{k}={v}" for k, v in settings.items()] + (["--tuned"] if tuned else [])
    env = {**os.environ, "ADAMOE_AUTOTUNE": "0"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"faults child {variant} (tuned={tuned}) failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    steps = out["per_step"]
    median = statistics.median(steps)
    return {**out, "median": median, "median_MB": median * PAGE / 2**20, "mean": statistics.fmean(steps)}


def bench_faults(
    *,
    tokens: int,
    hidden: int,
    ffn: int,
    steps: int = 5,
    warmup: int = 3,
    threads: int = 2,
    seed: int = 0,
    variants: tuple[str, ...] = VARIANTS,
) -> dict[str, Any]:
    """Minor faults per fwd+bwd step of each variant with glibc's default malloc and tuned, each in its
    own process: the warm-up steps' and counted steps' faults, their median, the megabytes first-touched
    per step (median faults x page size), the mean (heap growth while glibc's free lists settle shows in
    single steps) and the process's peak RSS."""
    shape = {"tokens": tokens, "hidden": hidden, "ffn": ffn, "experts": 8, "top_k": 2}
    settings = {"tokens": tokens, "hidden": hidden, "ffn": ffn, "steps": steps, "warmup": warmup}
    settings |= {"threads": threads, "seed": seed}
    rows = {
        variant: {
            name: _run_child(variant, tuned=tuned, **settings)
            for name, tuned in (("default", False), ("tuned", True))
        }
        for variant in variants
    }
    tuning = rows[variants[0]]["tuned"]["tuning"]
    return {
        "shape": shape,
        "warmup": warmup,
        "steps": steps,
        "page_bytes": PAGE,
        "tuning": tuning,
        "rows": rows,
    }


def faults_table(fa: dict[str, Any]) -> list[str]:
    """Markdown lines of :func:`bench_faults`."""
    sh = fa["shape"]
    lines = [
        "",
        f"### Minor page faults per fwd+bwd step (T={sh['tokens']}, H={sh['hidden']}, I={sh['ffn']}, "
        f"E=8 top-2; {fa['steps']} steps after {fa['warmup']} warm-up; counts, not timings)",
        "| variant | default malloc: faults/step, median (MB) | tuned (MB) | mean default / tuned "
        "| default: warm-up, counted | tuned: warm-up, counted | peak RSS MB default / tuned |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for variant, r in fa["rows"].items():
        d, t = r["default"], r["tuned"]
        lines.append(
            f"| {variant} | {d['median']:,.0f} ({d['median_MB']:.0f}) | {t['median']:,.0f} ({t['median_MB']:.0f}) "
            f"| {d['mean']:,.0f} / {t['mean']:,.0f} "
            f"| {d['warmup']} {d['per_step']} | {t['warmup']} {t['per_step']} | "
            f"{d['max_rss_MB']:.0f} / {t['max_rss_MB']:.0f} |"
        )
    lines.append(f"tuned: {fa['tuning']}")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Child process entry: print one JSON line with this process's counts."""
    parser = argparse.ArgumentParser(description="one process of adamoe.bench.faults (prints JSON)")
    for name, default in (("tokens", 2048), ("hidden", 512), ("ffn", 1792), ("steps", 5), ("warmup", 3)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=VARIANTS, default=VARIANTS[0])
    parser.add_argument("--tuned", action="store_true", help="call adamoe.bench.malloc.tune_malloc first")
    print(json.dumps(child(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
