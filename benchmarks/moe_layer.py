"""Benchmark the MoE layer: `python benchmarks/moe_layer.py [--quick] [--sections training,decode]`.

Prints Markdown tables and the JSON of every per-round sample, ratio and CI, with provenance (method:
adamoe.bench.timing / adamoe.bench.paired; docs/performance.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adamoe.bench.provenance import emit
from adamoe.bench.run import run_all
from adamoe.bench.settings import BenchSettings
from adamoe.bench.tables import format_table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run, not a measurement")
    parser.add_argument(
        "--sections", default="training,null_saving,decode", help="add ,model for whole models"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    settings = BenchSettings(repeats=args.repeats, threads=args.threads)
    if args.quick:
        settings = settings.shrink()
    result = run_all(settings, sections=tuple(args.sections.split(",")))
    emit(result, format_table(result), args.json)


if __name__ == "__main__":
    from adamoe.bench.malloc import tune_malloc

    tune_malloc()  # as adamoe bench: freed tensor memory is re-used, not re-faulted (tests call main)
    main()
