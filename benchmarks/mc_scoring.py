"""Multiple-choice scoring: our scorer vs lm-eval's HF backend on the same items and model.

`python benchmarks/mc_scoring.py [--limit 200] [--tasks synthetic-facts,...] [--batch-size 16] [--repeats 3]`

Both run SmolLM2-135M (fp32) on locally generated tasks; per-item agreement and a paired per-round
speed-up with a bootstrap 95% CI (method: adamoe.bench.mc_scoring). Prints a table and the JSON of all
numbers with provenance.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from adamoe.bench.mc_scoring import compare, format_table, load_model
from adamoe.bench.provenance import emit, stamped
from adamoe.data import load_task

DEFAULT_TASKS = "synthetic-facts,synthetic-arith,synthetic-nli"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tasks", default=DEFAULT_TASKS, help="comma-separated task names (generated or local)"
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=200, help="items per task")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed rotated rounds")
    parser.add_argument("--skip-lm-eval", action="store_true", help="time our scorer only")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON result here")
    args = parser.parse_args(argv)

    def run() -> dict:
        model, tokenizer, origin = load_model()
        tasks = args.tasks.split(",")
        examples = [ex for t in tasks for ex in load_task(t, split=args.split, limit=args.limit)]
        result = compare(
            model, tokenizer, examples, batch_size=args.batch_size, repeats=args.repeats,
            threads=args.threads, skip_lm_eval=args.skip_lm_eval,
        )  # fmt: skip
        return {"model": origin, "tasks": args.tasks, **result}

    result = stamped(args.threads, run)
    emit(result, format_table(result), args.json)


if __name__ == "__main__":
    from adamoe.bench.malloc import tune_malloc

    tune_malloc()  # as adamoe bench: freed tensor memory is re-used, not re-faulted (tests call main)
    main()
