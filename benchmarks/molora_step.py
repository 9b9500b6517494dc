"""Benchmark a Mo-LoRA training step against a PEFT LoRA step of equal trainable parameters and against
no adapter, side by side.

`python benchmarks/molora_step.py [--steps 3] [--rounds 5] [--threads 2] [--variants none,lora:top2,top2-dense,...]`

Variants, parameter matching, step and timing method: adamoe.bench.molora (rotated rounds; each Mo-LoRA
variant's seconds per step paired per round against its equal-parameter LoRA, every variant's against
none, with bootstrap 95% CIs). Prints a Markdown table and the JSON of all measurements with provenance.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from adamoe.bench.molora import DEFAULT_VARIANTS, build, format_table, summary, time_variants
from adamoe.bench.provenance import emit, stamped
from adamoe.hf.models import ModelSpec
from adamoe.utils.seeding import derive_generator

SETTINGS = ("variants", "steps", "rounds", "threads", "batch", "tokens", "seed", "aux_coef", "foreach")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=42)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-foreach",
        dest="foreach",
        action="store_false",
        help="single-tensor AdamW (default: multi-tensor, as the trainer)",
    )
    parser.add_argument("--aux-coef", type=float, default=0.01, help="Mo-LoRA aux-loss weight (0: none)")
    parser.add_argument("--model", default="smollm2", help="model spec (tiny-llama: a smoke run)")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    def run() -> dict:
        base, _, _ = ModelSpec.parse(args.model).load(seed=args.seed)
        base.requires_grad_(False)
        gen = derive_generator(args.seed, "molora_step-tokens")
        ids = torch.randint(0, base.config.vocab_size, (args.batch, args.tokens), generator=gen)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            names = args.variants.split(",")
            variants = [build(n, base, aux_coef=args.aux_coef, foreach=args.foreach) for n in names]
        times = time_variants(variants, ids, steps=args.steps, rounds=args.rounds, threads=args.threads)
        settings = {k: getattr(args, k) for k in (*SETTINGS, "model")}
        return {"settings": settings, "variants": summary(variants, times, seed=args.seed)}

    result = stamped(args.threads, run)
    emit(result, format_table(result["variants"]), args.json)


if __name__ == "__main__":
    from adamoe.bench.malloc import tune_malloc

    tune_malloc()  # as adamoe bench: freed tensor memory is re-used, not re-faulted (tests call main)
    main()
