"""Experiment 2 (the AdaMoE paper's §4.2 at small scale): an MoE fine-tuned with top-2 vs AdaMoE.

The model is the shared-plus-routed 8-expert SmolLM2 (:func:`adamoe.experiments.moe_model.build_default_moe`:
50% shared core + 8 co-activation groups with fitted routers, a standard ``Qwen2MoeForCausalLM``), where
each routed expert matters, so "same accuracy at lower load" is a real claim there (copy-upcycled
experts would make it vacuous). Variants, same data, learning rate, epochs and seeds:

- ``top2``: converted with m = 0 (the original routing);
- ``m8k3`` (AdaMoE): m = 8 null experts, k raised to 3, ``gate2`` initialised ``copy_jitter`` from an
  independent stream, trained with the paper's annealing (null-aware aux loss, tight in epoch 1).

Both fine-tune LoRA (rank 8) on the router (``gate`` + ``gate2``) and the experts, as in the paper
(:func:`adamoe.hf.peft_utils.lora_config_for`). Per AdaMoE seed the compute dial (a null-logit bias
found by bisection on validation items, :mod:`adamoe.eval.dial`) traces accuracy vs load on test items;
routing sharpness per layer (paper Fig. 3) comes from the test-set routing sums.

Data (:data:`adamoe.experiments.harness.MOE_TASKS`): the paper's MoE table, WinoGrande, HellaSwag,
PIQA, SIQA, OpenBookQA and ARC-Challenge, read offline; fine-tuning on each task's ``train`` part
(multi-task on the union), the dial's bias search on ``validation``, the tables on ``test``.

Budget basis (2 cores): on the earlier BIG-bench tasks a run trained 64 steps in ~3.5 min and scored
1,200 items in ~2.4 min; the dial (seed 0) ~6.5 min; the untuned reference ~2.5 min (64 min for 2,400
test items per run). The default here scores 300 test items per task (ARC-Challenge has 209): 1,709
items of ~556 request characters on average (HellaSwag's four long endings dominate), about 0.7x the
earlier characters, and trains 6 x 32 = 192 pairs (48 steps): **~50 min** expected (+3 min if the MoE is
built first), to be confirmed by the first full run. ``--quick`` (:data:`SMOKE_TASKS`, 8 training / 24
test items, 2 epochs of 2 steps, 2 seeds, one dial target): ~3 min.
"""

from __future__ import annotations

import copy
import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from adamoe.experiments.dial import dial_points, sharpness_and_dial_plots
from adamoe.experiments.harness import (
    MOE_TASKS,
    SMOKE_TASKS,
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
from adamoe.hf.convert import GATE2_INITS
from adamoe.utils.config import option, require

__all__ = ["MoEExperimentConfig", "prepare_variant", "run_moe"]

DEFAULT_MODEL = "moefy"
"""The cached shared-plus-routed SmolLM2 MoE (built on first use, ~minutes, then loaded from disk)."""


@dataclass(kw_only=True)
class MoEExperimentConfig(ExperimentConfig):
    """``adamoe reproduce moe``: top-k vs AdaMoE on an MoE (``examples/reproduce_moe.yaml``)."""

    QUICK: ClassVar[dict[str, Any]] = {
        "tasks": list(SMOKE_TASKS),
        "train_per_task": 8,
        "test_per_task": 24,
        "calib_per_task": 8,
        "dial_per_task": 12,
        "dial_targets": [1.5],
        "dial_iters": 4,
        "epochs": 2,
        "seeds": 2,
    }

    model: str = DEFAULT_MODEL
    tasks: list[str] = field(default_factory=lambda: list(MOE_TASKS))
    train_per_task: int = option(32, ge=1)
    test_per_task: int = option(300, ge=1)
    lr: float = option(5e-5, gt=0)
    null_experts: int = option(8, ge=1)
    top_k: int = option(3, ge=1)
    gate2_init: str = option("copy_jitter", choices=GATE2_INITS)
    lora_rank: int = option(8, ge=1)
    lora_alpha: int = option(16, ge=1)
    lora_targets: list[str] = field(default_factory=lambda: ["router", "experts"])
    calib_per_task: int = option(16, ge=1)
    dial_per_task: int = option(50, ge=1)
    dial_targets: list[float] = field(default_factory=lambda: [1.0, 1.5, 2.0])
    dial_iters: int = option(8, ge=1)
    dial_range: float = option(2.0, gt=0)
    dial_seeds: int = option(1, ge=1)
    """The compute dial runs on the first ``dial_seeds`` AdaMoE seeds (its searches cost ~4 min each)."""
    reference: bool = True

    def check(self) -> None:
        super().check()
        from adamoe.hf.peft_utils import LORA_TARGETS

        bad = [t for t in self.lora_targets if t not in LORA_TARGETS]
        require(
            not bad and bool(self.lora_targets),
            f"lora_targets: expected a subset of {LORA_TARGETS}, got {self.lora_targets}",
        )
        require(
            all(t > 0 for t in self.dial_targets),
            f"dial_targets: expected loads > 0, got {self.dial_targets}",
        )
        if self.model != DEFAULT_MODEL:
            from adamoe.hf.models import ModelSpec

            ModelSpec.parse(self.model)

    def variants(self, baseline_k: int) -> dict[str, tuple[int, int]]:
        """{name: (m, k)}: the top-k baseline and AdaMoE."""
        return {
            f"top{baseline_k}": (0, baseline_k),
            f"m{self.null_experts}k{self.top_k}": (self.null_experts, self.top_k),
        }

    def resolved(self) -> dict[str, Any]:
        """The config plus each variant's aux-loss recipe (annealing shown for the variant with nulls)."""
        return {
            **self.to_dict(),
            "recipes": {
                "baseline (m=0)": schedule(self, num_null=0),
                f"m{self.null_experts}k{self.top_k}": schedule(self, num_null=self.null_experts),
            },
        }


def load_moe(cfg: MoEExperimentConfig, *, log=print) -> tuple[Any, Any, int]:
    """(unconverted MoE model, tokenizer, its top-k): the cached moefied SmolLM2, or ``cfg.model``."""
    if cfg.model == DEFAULT_MODEL:
        from adamoe.experiments.moe_model import build_default_moe

        model, tok, _ = build_default_moe(log=log)
    else:
        from adamoe.hf.models import ModelSpec

        model, tok, info = ModelSpec.parse(cfg.model).load(routed=False)
        require(
            info.get("kind") == "moe",
            f"model: expected an unconverted MoE model, got {cfg.model!r} ({info.get('kind')})",
        )
    return model.eval(), tok, int(model.config.num_experts_per_tok)


def prepare_variant(
    moe: Any, tok: Any, cfg: MoEExperimentConfig, *, num_null: int, top_k: int, seed: int
) -> Any:
    """A converted copy of ``moe`` with LoRA on the router (gate, gate2) and the experts (paper recipe).

    The seed's ``init`` stream draws gate2's jitter and (through a forked global RNG) the LoRA init.
    """
    from peft import get_peft_model

    from adamoe.hf.convert import convert
    from adamoe.hf.gate2 import calibration_means
    from adamoe.hf.peft_utils import lora_config_for

    model = copy.deepcopy(moe)
    init = seed_stream(seed, "init")
    calibration = calibration_means(model, tok) if num_null else None
    convert(
        model,
        null_experts=num_null,
        top_k=top_k,
        gate2_init=cfg.gate2_init,
        seed=init,
        calibration=calibration,
    )
    lcfg = lora_config_for(model, rank=cfg.lora_rank, alpha=cfg.lora_alpha, targets=tuple(cfg.lora_targets))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init)
        return get_peft_model(model, lcfg).eval()


def _one_run(
    moe: Any,
    tok: Any,
    data: Any,
    cfg: MoEExperimentConfig,
    *,
    name: str,
    mk: tuple[int, int],
    seed: int,
    baseline_k: int,
    dial: bool,
) -> dict[str, Any]:
    """Convert, add LoRA, train and score one (variant, seed); AdaMoE also gets its dial curve when
    ``dial``."""
    m, k = mk
    model = prepare_variant(moe, tok, cfg, num_null=m, top_k=k, seed=seed)
    trained = train_variant(model, tok, data, cfg, num_null=m, seed=seed)
    t0 = time.perf_counter()
    out = {
        "tasks": score_tasks(model, tok, data.tests, baseline_k=baseline_k, batch_size=cfg.eval_batch_size),
        "train": trained,
    }
    if m > 0 and dial:
        out["dial"] = dial_points(model, tok, data, cfg, baseline_k=baseline_k)
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    del model
    gc.collect()
    return out


def _references(
    moe: Any, tok: Any, data: Any, cfg: MoEExperimentConfig, store: RunStore, seed: int, baseline_k: int
) -> None:
    """The un-tuned MoE at top-k (converted, m = 0) as a reference row, scored once."""
    from adamoe.hf.convert import convert

    if store.get("untuned", seed) is None:
        model = convert(copy.deepcopy(moe), null_experts=0)
        store.put(
            "untuned",
            seed,
            score_tasks(model, tok, data.tests, baseline_k=baseline_k, batch_size=cfg.eval_batch_size),
        )


def run_moe(cfg: MoEExperimentConfig, *, seed: int, run_dir: Path, log=print) -> dict[str, Any]:
    """Every (variant, seed) run not yet saved in ``run_dir/runs``, then the report; returns its tables."""
    started = time.perf_counter()
    data = load_data(cfg, calib_per_task=cfg.calib_per_task)
    moe, tok, baseline_k = load_moe(cfg, log=log)
    variants = cfg.variants(baseline_k)
    store, seeds = RunStore(run_dir, cfg.to_dict()), [seed + i for i in range(cfg.seeds)]
    todo = [(v, s) for v in variants for s in seeds if store.get(v, s) is None]
    log(
        f"moe: {len(variants)} variants x {len(seeds)} seeds; {len(todo)} runs to do, "
        f"{len(data.train)} training items"
    )
    if cfg.reference:
        _references(moe, tok, data, cfg, store, seeds[0], baseline_k)
    for i, (name, s) in enumerate(todo, 1):
        t0 = time.perf_counter()
        dial = s in seeds[: cfg.dial_seeds]
        result = _one_run(
            moe, tok, data, cfg, name=name, mk=variants[name], seed=s, baseline_k=baseline_k, dial=dial
        )
        store.put(name, s, **result)
        log(
            f"[{i}/{len(todo)} +{time.perf_counter() - started:.0f}s] {name} seed {s}: "
            f"{time.perf_counter() - t0:.0f}s; {run_summary(result['tasks'])}"
        )
    runs = store.runs(list(variants), seeds)
    if cfg.reference:
        runs = {"untuned": [store.runs(["untuned"], seeds[:1])["untuned"][0]] * len(seeds), **runs}
    ada = list(variants)[1]
    dial_seeds = [s for s in seeds if "dial" in store.get(ada, s)]
    dials = [store.get(ada, s)["dial"] for s in dial_seeds]
    plots = sharpness_and_dial_plots(run_dir, runs, dials, list(variants))
    return write_experiment_report(
        run_dir,
        title=f"MoE ({cfg.model}): fine-tuned top-{baseline_k} vs AdaMoE (paper §4.2 analog)",
        runs=runs,
        cfg=cfg,
        baseline=next(iter(variants)),
        baseline_k=baseline_k,
        references=["untuned"],
        notes=_notes(
            cfg, data, seeds, dict(zip(dial_seeds, dials)), time.perf_counter() - started, baseline_k
        ),
        plots=plots,
        metrics={"config": cfg.resolved(), "seeds": seeds, "dial": dials},
    )


def _notes(
    cfg: MoEExperimentConfig,
    data: Any,
    seeds: list[int],
    dials: dict[int, dict],
    seconds: float,
    k: int,
) -> list[str]:
    curve = "; ".join(
        f"seed {s}: "
        + ", ".join(
            f"bias {p['bias']:+.3f} load {p['load']:.2f} acc {100 * p['acc']:.1f}" for p in d["curve"]
        )
        for s, d in dials.items()
    )
    return [
        f"Tasks ({len(cfg.tasks)}): {', '.join(cfg.tasks)}.",
        f"Training: multi-task on {cfg.train_per_task} training items per task ({len(data.train)} pairs), "
        f"{cfg.epochs} epochs, batch {cfg.batch_size}, lr {cfg.lr}; seeds {seeds}.",
        f"LoRA rank {cfg.lora_rank} (alpha {cfg.lora_alpha}) on {', '.join(cfg.lora_targets)} "
        "(router = gate + gate2).",
        f"AdaMoE: m={cfg.null_experts}, k={cfg.top_k}, gate2 init {cfg.gate2_init}; "
        f"aux: {cfg.resolved()['recipes']}.",
        f"FLOPs: expert FLOPs vs top-{k}; whole-model FLOPs per token vs the same model at top-{k} "
        "(shared expert, attention, LM head included).",
        f"Compute dial ({cfg.dial_per_task} test items per task): {curve}.",
        f"'untuned' = the MoE before fine-tuning at top-{k}. Wall time of this invocation: {seconds:.0f} s "
        "(runs already in the run folder are loaded, not repeated).",
    ]
