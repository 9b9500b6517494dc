"""Profile what bounds issue 12's missed speed targets: `python benchmarks/profile_bounds.py [--quick]`.

Three sections (see adamoe.speed_profile for the method), every candidate timed interleaved in the same
rounds; prints Markdown tables, then the JSON of every measurement:

- training: the six GEMMs of the training shape (d1024 I3584 E8 k2 T4096, fwd+bwd) as one big mm vs E
  per-group mms, the grouped layer predicted at the per-group rates vs the limit and vs the measured layer;
- decode: the decode shape at T=1 (d2048 I1024 E64 top-8): our fused kernel vs BLAS GEMV vs a plain
  read of the same weights, in GB/s, at 1 thread and at --threads;
- prefill: torch.profiler self CPU time per op category of one forward of the model bench's models
  (SmolLM2 dense, its 8-expert MoE under transformers' grouped_mm and ours, AdaMoE at load 1) at
  --batch x --seq, beside the whole-model FLOPs prediction.

Full size (quiet machine): OMP_NUM_THREADS=2 python benchmarks/profile_bounds.py --threads 2
Smoke run (tiny shapes and tiny random models; measures nothing): python benchmarks/profile_bounds.py --quick
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from adamoe.speed import BenchSettings
from adamoe.speed_model import ModelBenchSettings
from adamoe.speed_profile import decode_bounds, gemm_shape_rates, prefill_bounds, profile_table

SECTIONS = ("training", "decode", "prefill")


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
    """Run the chosen sections with ``args.threads`` threads; results by section."""
    layer = BenchSettings(threads=args.threads, repeats=args.repeats)
    model = ModelBenchSettings(target_loads=(1.0,), repeats=args.repeats)  # the bench's dial, load 1 only
    batch, seq = args.batch, args.seq
    if args.quick:
        layer, model, batch, seq = replace(layer.shrink(), decode_repeats=3), model.shrink(), 2, 8
    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {"threads": args.threads, "torch": torch.__version__, "quick": args.quick}
    if "training" in args.sections:
        out["training"] = gemm_shape_rates(layer)
    if "decode" in args.sections:
        out["decode"] = decode_bounds(layer, thread_counts=args.decode_threads)
    if "prefill" in args.sections:
        out["prefill"] = prefill_bounds(model, batch=batch, seq=seq)
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    print("\n".join(profile_table(result)))
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n")


if __name__ == "__main__":
    main()
