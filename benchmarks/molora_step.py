"""Benchmark a Mo-LoRA training step against plain LoRA of the same trainable parameters, side by side.

`python benchmarks/molora_step.py [--steps 3] [--rounds 5] [--threads 2] [--variants lora32,top2-dense,...]`

SmolLM2-135M (fp32, offline) with adapters on q, k, v, o, gate, up and down of every layer:

- ``lora32``: PEFT LoRA rank 32 (alpha 64): the reference, same trainable parameters as 4 experts x rank 8;
- ``top2-dense`` / ``top2-sparse``: Mo-LoRA, 4 experts of rank 8 (alpha 16), top-2, no nulls, computed
  dense (one gated rank-32 LoRA) or sparse (sort/gather/scatter dispatch);
- ``m7k4-dense`` / ``m7k4-sparse``: AdaMoE, 7 null experts, top-4 over 4 + 7.

One step = forward + backward of the LM loss on a batch of ``--batch`` x ``--tokens`` random token ids
(+ ``--aux-coef`` x the null-aware aux loss for Mo-LoRA, as the trainer adds; 0 leaves it out) + AdamW
(multi-tensor ``foreach``, as in the trainer; ``--no-foreach``: single-tensor). Every variant shares the one
frozen base model's weights. After one untimed warm-up step each, ``--rounds`` rounds run every variant
for ``--steps`` steps, the variant order rotating per round, so a noisy shared machine slows all alike;
the table gives the median seconds per step and its ratio to ``lora32``, plus the measured Mo-LoRA load
(untrained routers). Prints a Markdown table and the JSON of all measurements.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from adamoe.hf.models import ModelSpec
from adamoe.hf.molora import DEFAULT_TARGETS, inject_molora, molora_modules
from adamoe.losses import null_aware_load_balance
from adamoe.stats import collect_routings
from adamoe.utils.seeding import derive_generator

REFERENCE = "lora32"
MOLORA = {"top2": (0, 2), "m7k4": (7, 4)}
"""Mo-LoRA variant -> (num_null, top_k); each is run as ``<name>-dense`` and/or ``<name>-sparse``."""
DEFAULT_VARIANTS = "lora32,top2-dense,top2-sparse,m7k4-dense"
EXPERTS, RANK, ALPHA = 4, 8, 16.0


@dataclass
class Variant:
    name: str
    model: Any
    optimizer: torch.optim.Optimizer
    routed: bool
    trainable: int
    aux_coef: float
    seconds: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)


def _shared_copy(base: torch.nn.Module) -> torch.nn.Module:
    """A deep copy that shares every (frozen) parameter with ``base``: one set of base weights in memory."""
    return copy.deepcopy(base, memo={id(p): p for p in base.parameters()})


def build(name: str, base: torch.nn.Module, *, aux_coef: float, foreach: bool) -> Variant:
    """The model + AdamW of one variant name (see the module docstring)."""
    model = _shared_copy(base)
    if name == REFERENCE:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=EXPERTS * RANK, lora_alpha=2 * EXPERTS * RANK, lora_dropout=0.0, bias="none",
            target_modules=list(DEFAULT_TARGETS),
        )  # fmt: skip
        model = get_peft_model(model, config)
    else:
        kind, _, compute = name.partition("-")
        if kind not in MOLORA or compute not in ("dense", "sparse"):
            valid = ", ".join(f"{k}-dense, {k}-sparse" for k in MOLORA)
            raise SystemExit(f"--variants: unknown {name!r}; valid: {REFERENCE}, {valid}")
        num_null, top_k = MOLORA[kind]
        inject_molora(
            model, num_experts=EXPERTS, num_null=num_null, top_k=top_k, rank=RANK, alpha=ALPHA,
            compute=compute,
        )  # fmt: skip
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, foreach=foreach)
    return Variant(name, model, optimizer, name != REFERENCE, sum(p.numel() for p in params), aux_coef)


def step(variant: Variant, ids: torch.Tensor) -> float:
    """One optimizer step; returns its wall-clock seconds (and records the Mo-LoRA load)."""
    t0 = time.perf_counter()
    loss = variant.model(input_ids=ids, labels=ids).loss
    routings = collect_routings(variant.model)
    if variant.routed and variant.aux_coef > 0:
        aux = sum(null_aware_load_balance(r.probs, r.indices, num_experts=r.num_experts) for r in routings)
        loss = loss + variant.aux_coef * aux
    loss.backward()
    variant.optimizer.step()
    variant.optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - t0
    if variant.routed:
        variant.loads.append(statistics.fmean(r.load() for r in routings))
    return seconds


def run(variants: list[Variant], ids: torch.Tensor, *, steps: int, rounds: int) -> None:
    """Warm-up step each, then ``rounds`` interleaved rounds of ``steps`` timed steps per variant."""
    for v in variants:
        step(v, ids)
        v.loads.clear()
    for r in range(rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            v.seconds += [step(v, ids) for _ in range(steps)]


def summary(variants: list[Variant]) -> dict[str, Any]:
    ref = next((v for v in variants if v.name == REFERENCE), None)
    ref_median = statistics.median(ref.seconds) if ref else None
    rows = {}
    for v in variants:
        median = statistics.median(v.seconds)
        rows[v.name] = {
            "median_s": median,
            "min_s": min(v.seconds),
            "ratio_vs_lora": median / ref_median if ref_median else None,
            "trainable": v.trainable,
            "load": statistics.fmean(v.loads) if v.loads else None,
            "compute": sorted({m.resolved_compute for m in molora_modules(v.model).values()}) or None,
            "seconds": v.seconds,
        }
    return rows


def format_table(rows: dict[str, Any]) -> str:
    lines = [
        "| variant | s/step (median) | min | ratio vs lora32 | trainable params | load |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        ratio = f"{r['ratio_vs_lora']:.3f}" if r["ratio_vs_lora"] is not None else "-"
        load = f"{r['load']:.2f}" if r["load"] is not None else "-"
        lines.append(
            f"| {name} | {r['median_s']:.3f} | {r['min_s']:.3f} | {ratio} | {r['trainable']:,} | {load} |"
        )
    return "\n".join(lines)


def main() -> None:
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base, _, _ = ModelSpec.parse("smollm2").load(seed=args.seed)
    base.requires_grad_(False)
    gen = derive_generator(args.seed, "molora_step-tokens")
    ids = torch.randint(0, base.config.vocab_size, (args.batch, args.tokens), generator=gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        variants = [
            build(name, base, aux_coef=args.aux_coef, foreach=args.foreach)
            for name in args.variants.split(",")
        ]
    run(variants, ids, steps=args.steps, rounds=args.rounds)
    rows = summary(variants)
    settings = {
        k: getattr(args, k) for k in ("steps", "rounds", "threads", "batch", "tokens", "seed", "aux_coef")
    }
    print(format_table(rows))
    print(json.dumps({"settings": settings, "variants": rows}, indent=2))


if __name__ == "__main__":
    main()
