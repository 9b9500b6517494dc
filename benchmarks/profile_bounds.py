"""Profile what bounds the speed targets: `python benchmarks/profile_bounds.py [--quick]`.

Three sections (method: adamoe.bench.profile and adamoe.bench.profile_ops), every candidate timed in the
same rotated rounds; prints Markdown tables, then the JSON of every measurement with its provenance:

- training: the six GEMMs of the training shape (d1024 I3584 E8 k2 T4096, fwd+bwd) as one big mm vs E
  per-group mms, the grouped layer predicted at the per-group rates vs the limit and vs the measured layer;
- decode: the decode shape at T=1 (d2048 I1024 E64 top-8): our fused kernel (and its build with the
  software prefetch compiled out, kernel_no_prefetch: the prefetch's A/B) vs BLAS GEMV vs a plain read of
  the same weights, in GB/s and paired against that read, at 1 thread and at --threads;
- prefill: torch.profiler self CPU time per op category of one forward of the model bench's models
  (SmolLM2 dense, its 8-expert MoE --testbed under transformers' grouped_mm and ours, AdaMoE at the
  dial's lowest load, k/2: load 1 on the top-2 default) at --batch x --seq, beside the whole-model FLOPs
  prediction; with --compiled (default) also the model bench's torch.compile'd twins (compiled and warmed
  before anything is profiled), with our routed-experts op, inductor's kernels and dynamo as categories.

Full size (quiet machine): OMP_NUM_THREADS=2 python benchmarks/profile_bounds.py --threads 2
The compiled MoEs at 1x128 on each testbed (prefill only; testbed core50-e8-top2, then core25-e8-top4):
  OMP_NUM_THREADS=2 python benchmarks/profile_bounds.py --threads 2 --sections prefill --batch 1 --testbed <name>
The prefetch A/B alone (decode only; the first run also builds the no-prefetch kernel, ~1 min):
  OMP_NUM_THREADS=2 python benchmarks/profile_bounds.py --threads 2 --sections decode --json-out FILE
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
from adamoe.bench.settings import BENCH_TESTBED, BenchSettings, ModelBenchSettings
from adamoe.experiments.moe_model import TESTBEDS


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
    parser.add_argument(
        "--testbed", default=BENCH_TESTBED, choices=sorted(TESTBEDS), help="prefill: the moefied SmolLM2"
    )
    parser.add_argument(
        "--compiled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="prefill: also profile the torch.compile'd variants",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny shapes and models (no testbed): a smoke run"
    )
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    args.sections = tuple(x for x in args.sections.split(",") if x)
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {unknown}; choose from {', '.join(SECTIONS)}")
    return args


def settings(args: argparse.Namespace) -> tuple[BenchSettings, ModelBenchSettings, int, int]:
    """The layer sections' settings, the model bench's (testbed ``args.testbed``, its dial at the lowest
    load only, compiled twins when ``args.compiled``) and the prefill (batch, seq); tiny ones for --quick."""
    layer = BenchSettings(threads=args.threads, repeats=args.repeats)
    model = ModelBenchSettings(repeats=args.repeats, compile=args.compiled)
    batch, seq = args.batch, args.seq
    if args.quick:  # tiny random top-2 models: the testbed is not loaded, the top-2 dial kept
        layer, model, batch, seq = replace(layer.shrink(), decode_repeats=3), model.shrink(), 2, 8
    else:
        model = model.with_testbed(args.testbed)
    return layer, replace(model, target_loads=model.target_loads[-1:]), batch, seq


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen sections with ``args.threads`` threads; results by section, with provenance."""
    layer, model, batch, seq = settings(args)
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
