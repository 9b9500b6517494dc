"""Benchmark whole models: `python benchmarks/model.py [--quick] [--batches 1,4] [--seq-lens 128,512]`.

SmolLM2 dense, its 8-expert MoE under transformers' grouped_mm and under adamoe, and AdaMoE at three loads
of the compute dial: prefill and decode tokens/s beside the FLOPs/bytes prediction, and peak memory (see
adamoe.speed_model for the method). The same as `adamoe bench --sections model`, without a run folder.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from adamoe.speed_model import ModelBenchSettings, bench_model, model_table


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny random models: a smoke run, not a measurement"
    )
    parser.add_argument("--batches", type=_ints, default=(1, 4))
    parser.add_argument("--seq-lens", type=_ints, default=(128, 512))
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    settings = ModelBenchSettings(
        batches=args.batches, seq_lens=args.seq_lens, decode_tokens=args.decode_tokens, repeats=args.repeats
    )
    if args.quick:
        settings = replace(settings.shrink(), repeats=2)
    result = bench_model(settings, threads=args.threads)
    print("\n".join(model_table(result)))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
