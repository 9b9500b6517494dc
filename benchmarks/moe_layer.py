"""Benchmark the MoE layer: `python benchmarks/moe_layer.py [--quick] [--sections training,decode]`.

Prints a Markdown table and the JSON of all measurements (see adamoe.speed for the method).
"""

from __future__ import annotations

import argparse
import json

from adamoe.speed import BenchSettings, format_table, run_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run, not a measurement")
    parser.add_argument(
        "--sections", default="training,null_saving,decode", help="add ,model for whole models"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    settings = BenchSettings(repeats=args.repeats, threads=args.threads)
    if args.quick:
        settings = settings.shrink()
    result = run_all(settings, sections=tuple(args.sections.split(",")))
    print(format_table(result))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
