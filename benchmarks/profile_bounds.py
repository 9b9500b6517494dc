"""Profile what bounds the speed targets: `python benchmarks/profile_bounds.py [--quick]`.

Three sections (method: adamoe.bench.profile and adamoe.bench.profile_ops), every candidate timed in the
same rotated rounds; prints Markdown tables, then the JSON of every measurement with its provenance:

- training: the six GEMMs of the training shape (d1024 I3584 E8 k2 T4096, fwd+bwd) as one big mm vs E
  per-group mms, the grouped layer predicted at the per-group rates vs the limit and vs the measured layer;
- decode: the decode shape at T=1 (d2048 I1024 E64 top-8): our fused kernel vs BLAS GEMV vs a plain
  read of the same weights, in GB/s and paired against that read, at 1 thread and at --threads;
- prefill: torch.profiler self CPU time per op category of one forward of the model bench's models
  (SmolLM2 dense, its 8-expert MoE under transformers' grouped_mm and ours, AdaMoE at load 1) at
  --batch x --seq, beside the whole-model FLOPs prediction.

Full size (quiet machine): OMP_NUM_THREADS=2 python benchmarks/profile_bounds.py --threads 2
Smoke run (tiny shapes and tiny random models; measures nothing): python benchmarks/profile_bounds.py --quick
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from adamoe.bench.profile import PROFILE_SECTIONS as SECTIONS
from adamoe.bench.profile import profile_table, run_profiles
from adamoe.bench.provenance import emit
from adamoe.bench.settings import BenchSettings, ModelBenchSettings


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--sections`` is checked against :data:`SECTIONS`."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma list of " + ", ".join(SECTIONS))
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (training, prefill)")
    parser.add_argument("--decode-threads", type=_ints, default=None, help="default: 1,<threads>")
    parser.add_argument("--batch", type=int, default=4, help="prefill batch")
    parser.add_argument("--seq", type=int, default=128, help="prefill sequence length")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and models: a smoke run")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    args.sections = tuple(x for x in args.sections.split(",") if x)
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {unknown}; choose from {', '.join(SECTIONS)}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen sections with ``args.threads`` threads; results by section, with provenance."""
    layer = BenchSettings(threads=args.threads, repeats=args.repeats)
    model = ModelBenchSettings(target_loads=(1.0,), repeats=args.repeats)  # the bench's dial, load 1 only
    batch, seq = args.batch, args.seq
    if args.quick:
        layer, model, batch, seq = replace(layer.shrink(), decode_repeats=3), model.shrink(), 2, 8
    return run_profiles(
        layer, model, sections=args.sections, batch=batch, seq=seq, decode_threads=args.decode_threads
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    emit(result, "\n".join(profile_table(result)), args.json_out)


if __name__ == "__main__":
    from adamoe.bench.malloc import tune_malloc

    tune_malloc()  # as adamoe bench: freed tensor memory is re-used, not re-faulted (tests call main)
    main()
