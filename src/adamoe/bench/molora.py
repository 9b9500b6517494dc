"""A Mo-LoRA training step against plain PEFT LoRA of the same trainable parameters, and against no
adapter at all (``benchmarks/molora_step.py``).

SmolLM2-135M (fp32) with adapters on q, k, v, o, gate, up and down of every layer. Variants:

- ``top2-dense`` / ``top2-sparse``: Mo-LoRA, E = 4 experts of rank r = 8 (alpha 16), top-2, no nulls,
  computed dense (one gated rank-32 LoRA) or sparse (sort/gather/scatter dispatch);
- ``m7k4-dense`` / ``m7k4-sparse``: AdaMoE, m = 7 null experts, top-4 over 4 + 7;
- ``lora:top2`` / ``lora:m7k4``: PEFT LoRA (alpha = 2 x rank, as Mo-LoRA's 16 / 8) with the rank that
  matches that Mo-LoRA's trainable parameters (:func:`matched_rank`); ``lora<R>``: PEFT LoRA of rank R;
- ``none``: no adapter: the frozen model's forward and backward down to its input embeddings
  (transformers' ``enable_input_require_grads``), no optimizer: the floor every adapter step pays
  (it also computes layer 0's input gradient, which no adapter needs: ~1/L of the backward).

Equal parameters (issue 20): over the targeted linears (in_j, out_j), a LoRA of rank R trains
``R * S`` with ``S = sum_j (in_j + out_j)``, and a Mo-LoRA ``E*r*S + (E+m) * sum_j in_j`` (A and B of E
experts plus a bias-free router over E + m slots): the routers add 6% (top2) to 17% (m7k4) on SmolLM2.
No integer rank matches exactly in general: the matched rank is the nearest (halves round up), so the
LoRA is off by at most ``S / 2`` parameters, a relative ``1 / (2R - 1)``; the table lists both counts.

One step = forward + backward of the LM loss on a fixed batch of random token ids (+ ``aux_coef`` x the
null-aware aux loss for Mo-LoRA, as the trainer adds) + AdamW. Every variant shares the frozen base
weights. One untimed warm-up step each gives the Mo-LoRA load on the very batch that is timed; then
``rounds`` rotated rounds (:func:`adamoe.bench.timing.timed_rounds`) run ``steps`` steps of every
variant; each Mo-LoRA variant's seconds per step are paired per round against its equal-parameter LoRA,
and every variant's against ``none``.
"""

from __future__ import annotations

import copy
import math
import statistics
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adamoe.bench.paired import fmt_ratio, paired_ratio
from adamoe.bench.timing import timed_rounds
from adamoe.hf.molora import DEFAULT_TARGETS, inject_molora, molora_modules
from adamoe.losses import null_aware_load_balance
from adamoe.stats import collect_routings

__all__ = [
    "BASELINE",
    "DEFAULT_VARIANTS",
    "build",
    "format_table",
    "lora_count",
    "matched_rank",
    "molora_count",
    "target_shapes",
    "time_variants",
]

BASELINE = "none"
MOLORA = {"top2": (0, 2), "m7k4": (7, 4)}
"""Mo-LoRA variant -> (num_null, top_k); each is run as ``<name>-dense`` and/or ``<name>-sparse``."""
DEFAULT_VARIANTS = "none,lora:top2,top2-dense,top2-sparse,lora:m7k4,m7k4-dense"
EXPERTS, RANK, ALPHA = 4, 8, 16.0


@dataclass(kw_only=True)
class Variant:
    """A model with its adapters, its AdamW (None without trainable parameters), and what the table
    reports about it: LoRA rank (None for Mo-LoRA and ``none``), the Mo-LoRA kind a LoRA matches."""

    name: str
    model: Any
    optimizer: torch.optim.Optimizer | None
    routed: bool
    trainable: int
    aux_coef: float
    rank: int | None = None
    matches: str | None = None
    load: float | None = None


def target_shapes(model: nn.Module, targets: tuple[str, ...] = DEFAULT_TARGETS) -> list[tuple[int, int]]:
    """(in_features, out_features) of every ``nn.Linear`` whose last name part is in ``targets``."""
    return [
        (m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in targets
    ]


def lora_count(shapes: list[tuple[int, int]], rank: int) -> int:
    """Trainable parameters of a rank-``rank`` LoRA (A: rank x in, B: out x rank, no bias) on ``shapes``."""
    return rank * sum(i + o for i, o in shapes)


def molora_count(shapes: list[tuple[int, int]], *, num_null: int) -> int:
    """Trainable parameters of Mo-LoRA (:data:`EXPERTS` x rank :data:`RANK`, ``num_null`` nulls) on
    ``shapes``: ``E*r*(in+out)`` for the experts' A and B plus ``(E+m)*in`` for the router, per linear."""
    return sum(EXPERTS * RANK * (i + o) + (EXPERTS + num_null) * i for i, o in shapes)


def matched_rank(shapes: list[tuple[int, int]], *, num_null: int) -> tuple[int, int]:
    """(LoRA rank nearest to Mo-LoRA's trainable count with ``num_null`` nulls, LoRA minus Mo-LoRA count).

    ``|difference| <= sum(in + out) / 2`` (half a rank step); exact halves round up.
    """
    target = molora_count(shapes, num_null=num_null)
    rank = max(1, math.floor(target / lora_count(shapes, 1) + 0.5))
    return rank, lora_count(shapes, rank) - target


def _shared_copy(base: torch.nn.Module) -> torch.nn.Module:
    """A deep copy that shares every (frozen) parameter with ``base``: one set of base weights in memory."""
    return copy.deepcopy(base, memo={id(p): p for p in base.parameters()})


def _peft_lora(model: nn.Module, rank: int) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, bias="none", target_modules=list(DEFAULT_TARGETS)
    )
    return get_peft_model(model, config)


def _adapted(name: str, model: nn.Module) -> tuple[nn.Module, int | None, str | None]:
    """``model`` with the adapters ``name`` asks for; the LoRA rank and the Mo-LoRA kind it matches."""
    kind, _, compute = name.partition("-")
    if name == BASELINE:
        model.enable_input_require_grads()  # backward through every layer, as any adapter's
        return model, None, None
    if name.startswith("lora:") and name[5:] in MOLORA:
        rank, _ = matched_rank(target_shapes(model), num_null=MOLORA[name[5:]][0])
        return _peft_lora(model, rank), rank, name[5:]
    if name.startswith("lora") and name[4:].isdigit() and int(name[4:]) > 0:
        return _peft_lora(model, int(name[4:])), int(name[4:]), None
    if kind not in MOLORA or compute not in ("dense", "sparse"):
        valid = ", ".join(f"{k}-dense, {k}-sparse, lora:{k}" for k in MOLORA)
        raise SystemExit(f"--variants: unknown {name!r}; valid: {BASELINE}, lora<rank>, {valid}")
    num_null, top_k = MOLORA[kind]
    inject_molora(
        model, num_experts=EXPERTS, num_null=num_null, top_k=top_k, rank=RANK, alpha=ALPHA, compute=compute
    )
    return model, None, None


def build(name: str, base: torch.nn.Module, *, aux_coef: float, foreach: bool) -> Variant:
    """The model + AdamW of one variant name (see the module docstring)."""
    model, rank, matches = _adapted(name, _shared_copy(base))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, foreach=foreach) if params else None
    return Variant(
        name=name, model=model, optimizer=optimizer, routed=bool(molora_modules(model)),
        trainable=sum(p.numel() for p in params), aux_coef=aux_coef, rank=rank, matches=matches,
    )  # fmt: skip


def step(variant: Variant, ids: torch.Tensor) -> list[Any]:
    """One optimizer step on (B, S) ``ids``; returns the routings of its forward (empty without Mo-LoRA)."""
    loss = variant.model(input_ids=ids, labels=ids).loss
    routings = collect_routings(variant.model) if variant.routed else []
    if routings and variant.aux_coef > 0:
        aux = sum(null_aware_load_balance(r.probs, r.indices, num_experts=r.num_experts) for r in routings)
        loss = loss + variant.aux_coef * aux
    loss.backward()
    if variant.optimizer is not None:
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


def _equal_lora(v: Variant, names: set[str]) -> str | None:
    """The equal-parameter LoRA variant timed beside Mo-LoRA variant ``v`` (None: not a Mo-LoRA, or absent)."""
    kind = v.name.partition("-")[0]
    return f"lora:{kind}" if v.routed and f"lora:{kind}" in names else None


def summary(variants: list[Variant], times: dict[str, list[float]], *, seed: int = 0) -> dict[str, Any]:
    """Per variant: median and min seconds per step, trainable parameters (and, for a Mo-LoRA with its
    equal-parameter LoRA timed, that LoRA's name, count difference and paired ratio with its CI), the
    paired ratio to ``none``, LoRA rank, load and the Mo-LoRA compute path actually used."""
    by_name = {v.name: v for v in variants}
    rows = {}
    for v in variants:
        lora = _equal_lora(v, set(times))
        ratio = paired_ratio(times[v.name], times[lora], seed=seed) if lora else None
        base = None
        if BASELINE in times and v.name != BASELINE:
            base = paired_ratio(times[v.name], times[BASELINE], seed=seed)
        rows[v.name] = {
            "median_s": statistics.median(times[v.name]),
            "min_s": min(times[v.name]),
            "trainable": v.trainable,
            "rank": v.rank,
            "matches": v.matches,
            "equal_lora": lora,
            "lora_minus_molora": by_name[lora].trainable - v.trainable if lora else None,
            "ratio_vs_lora": ratio,
            "ratio_vs_none": base,
            "load": v.load,
            "compute": sorted({m.resolved_compute for m in molora_modules(v.model).values()}) or None,
            "seconds": times[v.name],
        }
    return rows


def format_table(rows: dict[str, Any]) -> str:
    """Markdown table of :func:`summary`."""
    lines = [
        "| variant | LoRA rank | trainable params | s/step (median) | min | × equal-param LoRA [95% CI] "
        "| LoRA − Mo-LoRA params | × no adapter [95% CI] | load |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    for name, r in rows.items():
        vs_lora = f"{fmt_ratio(r['ratio_vs_lora'])} ({r['equal_lora']})" if r["ratio_vs_lora"] else "-"
        gap = r["lora_minus_molora"]
        gap_text = f"{gap:+,} ({gap / r['trainable']:+.2%})" if gap is not None else "-"
        vs_none = fmt_ratio(r["ratio_vs_none"]) if r["ratio_vs_none"] else "-"
        load = f"{r['load']:.2f}" if r["load"] is not None else "-"
        rank = r["rank"] if r["rank"] is not None else "-"
        lines.append(
            f"| {name} | {rank} | {r['trainable']:,} | {r['median_s']:.3f} | {r['min_s']:.3f} | {vs_lora} "
            f"| {gap_text} | {vs_none} | {load} |"
        )
    return "\n".join(lines)
