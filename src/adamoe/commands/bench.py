"""Benchmark the MoE layer side by side (ours, the dense limit, transformers' experts backends).

Writes ``bench.json`` and ``bench.md`` into the run directory and prints the table.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from adamoe.commands.common import verb_config
from adamoe.runs import run_directory, save_run_config
from adamoe.utils.config import Config, option, require
from adamoe.utils.io import atomic_save_json, atomic_write_text

SECTIONS = ("training", "null_saving", "decode")


@dataclass(kw_only=True)
class BenchVerbConfig(Config):
    """``adamoe bench``: which ``sections``, ``repeats`` timings each, on ``threads`` threads."""

    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    repeats: int = option(7, ge=1)
    threads: int = option(2, ge=1)
    quick: bool = False

    def check(self) -> None:
        bad = [s for s in self.sections if s not in SECTIONS]
        require(
            bool(self.sections) and not bad,
            f"sections: unknown {bad}; expected some of {', '.join(SECTIONS)}, e.g. --sections training,decode",
        )


CONFIG = BenchVerbConfig
"""The verb's typed config (listed in ``--help``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``adamoe bench`` flags."""
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run, not a measurement")
    parser.add_argument("--sections", help="comma list of training,null_saving,decode")


def run(args: argparse.Namespace) -> dict:
    """Run the layer benchmark (``adamoe bench``); returns its result record."""
    from adamoe.speed import BenchSettings, format_table, run_all

    quick = True if args.quick else None
    cfg = verb_config(BenchVerbConfig, args, lists=("sections",), sections=args.sections, quick=quick)
    with run_directory(args.runs_root, "bench", args.run_dir) as run_dir:
        save_run_config(run_dir, {**cfg.to_dict(), "seed": args.seed})
        settings = BenchSettings(repeats=cfg.repeats, threads=cfg.threads, seed=args.seed)
        if cfg.quick:
            settings = settings.shrink()
        result = run_all(settings, sections=tuple(cfg.sections))
        table = format_table(result)
        atomic_save_json(run_dir / "bench.json", result)
        atomic_write_text(run_dir / "bench.md", table + "\n")
    print(table)
    print(f"\nwritten to {run_dir}")
    return result
