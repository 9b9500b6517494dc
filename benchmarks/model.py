"""Benchmark whole models: `python benchmarks/model.py [--quick] [--batches 1,4] [--seq-lens 128,512]`.

SmolLM2 dense, its 8-expert MoE under transformers' grouped_mm and under adamoe, and AdaMoE at three loads
of the compute dial: prefill (eager and torch.compile'd; --no-compile: eager only) and decode tokens/s with
paired ratios to the FLOPs/bytes prediction and to transformers' grouped_mm, and peak memory (method:
adamoe.bench.model). The same as `adamoe bench --sections model`, without a run folder.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from adamoe.bench.provenance import emit
from adamoe.bench.run import run_all
from adamoe.bench.settings import BenchSettings, ModelBenchSettings
from adamoe.bench.tables import format_table


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny random models: a smoke run, not a measurement"
    )
    parser.add_argument("--batches", type=_ints, default=(1, 4))
    parser.add_argument("--seq-lens", type=_ints, default=(128, 512))
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="no torch.compile'd prefill variants")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    model = ModelBenchSettings(
        batches=args.batches,
        seq_lens=args.seq_lens,
        decode_tokens=args.decode_tokens,
        repeats=args.repeats,
        compile=not args.no_compile,
    )
    if args.quick:
        model = replace(model.shrink(), repeats=2)
    result = run_all(BenchSettings(threads=args.threads, model=model), sections=("model",))
    emit(result, format_table(result), args.json)


if __name__ == "__main__":
    from adamoe.bench.malloc import tune_malloc

    tune_malloc()  # as adamoe bench: freed tensor memory is re-used, not re-faulted (tests call main)
    main()
