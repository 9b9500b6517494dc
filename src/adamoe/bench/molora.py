"""A Mo-LoRA training step against a plain PEFT LoRA step (``benchmarks/molora_step.py``).

SmolLM2-135M (fp32) with adapters on q, k, v, o, gate, up and down of every layer:

- ``lora32``: PEFT LoRA rank 32 (alpha 64), the reference;
- ``top2-dense`` / ``top2-sparse``: Mo-LoRA, 4 experts of rank 8 (alpha 16), top-2, no nulls, computed
  dense (one gated rank-32 LoRA) or sparse (sort/gather/scatter dispatch);
- ``m7k4-dense`` / ``m7k4-sparse``: AdaMoE, 7 null experts, top-4 over 4 + 7.

The routers add parameters, so "the same rank" is not "the same trainable parameters": the table lists
each variant's count. One step = forward + backward of the LM loss on a fixed batch of random token ids
(+ ``aux_coef`` x the null-aware aux loss for Mo-LoRA, as the trainer adds) + AdamW. Every variant shares
the frozen base weights. One untimed warm-up step each gives the Mo-LoRA load on the very batch that is
timed; then ``rounds`` rotated rounds (:func:`adamoe.bench.timing.timed_rounds`) run ``steps`` steps of
every variant, and each variant's seconds per step are paired per round against ``lora32``.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass
from typing import Any

import torch

from adamoe.bench.paired import fmt_ratio, paired_ratio
from adamoe.bench.timing import timed_rounds
from adamoe.hf.molora import DEFAULT_TARGETS, inject_molora, molora_modules
from adamoe.losses import null_aware_load_balance
from adamoe.stats import collect_routings

__all__ = ["DEFAULT_VARIANTS", "REFERENCE", "build", "format_table", "time_variants"]

REFERENCE = "lora32"
MOLORA = {"top2": (0, 2), "m7k4": (7, 4)}
"""Mo-LoRA variant -> (num_null, top_k); each is run as ``<name>-dense`` and/or ``<name>-sparse``."""
DEFAULT_VARIANTS = "lora32,top2-dense,top2-sparse,m7k4-dense"
EXPERTS, RANK, ALPHA = 4, 8, 16.0


@dataclass(kw_only=True)
class Variant:
    """A model with its adapters, its AdamW, and what the table reports about it."""

    name: str
    model: Any
    optimizer: torch.optim.Optimizer
    routed: bool
    trainable: int
    aux_coef: float
    load: float | None = None


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
    trainable = sum(p.numel() for p in params)
    return Variant(
        name=name, model=model, optimizer=optimizer, routed=name != REFERENCE, trainable=trainable,
        aux_coef=aux_coef,
    )  # fmt: skip


def step(variant: Variant, ids: torch.Tensor) -> list[Any]:
    """One optimizer step on (B, S) ``ids``; returns the routings of its forward (empty for LoRA)."""
    loss = variant.model(input_ids=ids, labels=ids).loss
    routings = collect_routings(variant.model) if variant.routed else []
    if routings and variant.aux_coef > 0:
        aux = sum(null_aware_load_balance(r.probs, r.indices, num_experts=r.num_experts) for r in routings)
        loss = loss + variant.aux_coef * aux
    loss.backward()
    variant.optimizer.step()
    variant.optimizer.zero_grad(set_to_none=True)
    return routings


def _steps(variant: Variant, ids: torch.Tensor, n: int) -> None:
    for _ in range(n):
        step(variant, ids)


def time_variants(
    variants: list[Variant], ids: torch.Tensor, *, steps: int, rounds: int, threads: int
) -> dict[str, list[float]]:
    """Seconds per step of each variant in each round (warm-up step each first, untimed; it records
    the Mo-LoRA load on ``ids``, the batch then timed)."""
    for v in variants:
        routings = step(v, ids)
        v.load = statistics.fmean(float(r.load()) for r in routings) if routings else None
    fns = {v.name: (lambda v=v: _steps(v, ids, steps)) for v in variants}
    times = timed_rounds(fns, warmup=0, repeats=rounds, threads=threads)
    return {name: [t / steps for t in ts] for name, ts in times.items()}


def summary(variants: list[Variant], times: dict[str, list[float]], *, seed: int = 0) -> dict[str, Any]:
    """Per variant: median and min seconds per step, the paired ratio to ``lora32`` with its CI, trainable
    parameters, load and the Mo-LoRA compute path actually used."""
    rows = {}
    for v in variants:
        ratio = None
        if REFERENCE in times and v.name != REFERENCE:
            ratio = paired_ratio(times[v.name], times[REFERENCE], seed=seed)
        rows[v.name] = {
            "median_s": statistics.median(times[v.name]),
            "min_s": min(times[v.name]),
            "ratio_vs_lora": ratio,
            "trainable": v.trainable,
            "load": v.load,
            "compute": sorted({m.resolved_compute for m in molora_modules(v.model).values()}) or None,
            "seconds": times[v.name],
        }
    return rows


def format_table(rows: dict[str, Any]) -> str:
    """Markdown table of :func:`summary`."""
    lines = [
        "| variant | s/step (median) | min | × lora32 [95% CI] | trainable params | load |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        ratio = fmt_ratio(r["ratio_vs_lora"]) if r["ratio_vs_lora"] is not None else "-"
        load = f"{r['load']:.2f}" if r["load"] is not None else "-"
        lines.append(
            f"| {name} | {r['median_s']:.3f} | {r['min_s']:.3f} | {ratio} | {r['trainable']:,} | {load} |"
        )
    return "\n".join(lines)
