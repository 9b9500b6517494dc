"""The stages of ``adamoe demo``: a reduced, honest version of experiment 2 (:mod:`adamoe.experiments.moe`).

The demo is one more experiment on the shared helpers (:mod:`adamoe.experiments.harness` for config,
data, training and scoring; :mod:`adamoe.experiments.dial` for the dial and routing plots;
:mod:`adamoe.experiments.demo_report` on top of the harness's report).

1. Data: the paper's MoE table (:data:`adamoe.experiments.harness.MOE_TASKS`: WinoGrande, HellaSwag,
   PIQA, SIQA, OpenBookQA, ARC-Challenge), read offline. Per task the first 32 items of its ``train``
   part (multi-task fine-tuning on their union), 16 of ``validation`` (the dial's bias search, the
   only choice made) and 100 of ``test`` (the table); the parts are disjoint hash parts
   (:mod:`adamoe.data.splits`). ``--quick``: :data:`~adamoe.experiments.harness.SMOKE_TASKS`.
2. Models: the dense SmolLM2-135M-Instruct and its shared-plus-routed 8-expert MoE (``moe: moefy``, the
   ``testbed`` :data:`~adamoe.experiments.moe_model.DEFAULT_TESTBED`: a 25% shared core + top-4 of 8
   routed co-activation groups with fitted routers, routed experts 27% of the FLOPs, a standard
   Qwen2-MoE, built once and cached by :func:`adamoe.experiments.moe_model.build_default_moe`); ``moe: upcycle`` keeps the
   copied-expert Mixtral (where AdaMoE vs top-2 is close to vacuous, see issue 9).
3. Fine-tuning, same budget for both: top-4 (m = 0, Switch aux loss) and AdaMoE (m = 8 nulls, k = 5,
   via :func:`adamoe.hf.convert.convert`; null-aware aux loss annealed tight in epoch 1 -> loose after).
   Trainable: ``cfg.trainable`` limited to the last ``cfg.train_last_layers`` decoder layers, so
   backward stops early and a step costs ~1-3 s on 2 cores.
4. Evaluation of dense, top-2 and AdaMoE on the same items (per-item records: :class:`TaskRun`), and the
   compute dial (null-logit bias by bisection on validation items, accuracy vs load on test items).
5. Report (:mod:`adamoe.experiments.demo_report`): accuracy with n, 95% CI and chance, the paired
   AdaMoE - top-2 difference (CI, p, stated plainly when not significant), Load per layer and mean,
   expert and whole-model FLOPs vs top-2, sharpness and dial plots.

Budget basis (2 cores): on a fresh clone the top-4 demo with 120 test items per task and a 30-item,
5-step dial took 978 s (eval dense 179, MoE 310, dial 220, training 116 + 92, MoE build 52; 2026-12-07).
100 test items per task (-17% eval) and a 20-item, 4-step dial aim at ~13.5 min; budget 15 min.
``--quick``: the tiny random Llama on a few items of :data:`~adamoe.experiments.harness.SMOKE_TASKS`,
seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamoe.experiments.dial import dial_points
from adamoe.experiments.harness import (
    MOE_TASKS,
    SMOKE_TASKS,
    ExperimentConfig,
    ExperimentData,
    load_data,
    score_tasks,
    seed_stream,
    train_variant,
)
from adamoe.experiments.moe_model import DEFAULT_TESTBED, resolve_testbed
from adamoe.hf.convert import GATE2_INITS
from adamoe.hf.models import DEFAULT_NULL
from adamoe.train.config import TRAINABLE_SETS
from adamoe.utils.config import option, require

MOE_BUILDS = ("upcycle", "moefy")
"""How the MoE is made from the dense model: copied experts (`upcycle`), or a shared core + routed
co-activation groups with fitted routers (`moefy`, :mod:`adamoe.hf.moefy`; cached for SmolLM2)."""

__all__ = [
    "DemoConfig",
    "build_models",
    "evaluate_models",
    "finetune",
    "make_variants",
    "run_demo",
    "variant_names",
]


@dataclass(kw_only=True)
class DemoConfig(ExperimentConfig):
    """Every knob of the demo (``examples/demo.yaml`` spells out the defaults); sizes are per task.

    The shared keys (tasks, sizes, seeds, schedule, statistics) are :class:`ExperimentConfig`'s, with
    the demo's smaller defaults; one seed by default, so its p-values are conditional on that run.
    """

    model: str = "smollm2"
    moe: str = option("moefy", choices=MOE_BUILDS)
    testbed: str = DEFAULT_TESTBED
    """The moefied SmolLM2 (:data:`adamoe.experiments.moe_model.TESTBEDS`) for ``moe: moefy``."""
    tasks: list[str] = field(default_factory=lambda: list(MOE_TASKS))
    train_per_task: int = option(32, ge=1)
    test_per_task: int = option(100, ge=1)
    seeds: int = option(1, ge=1)
    num_experts: int = option(8, ge=1)
    baseline_k: int = option(4, ge=1)
    null_experts: int = option(DEFAULT_NULL, ge=0)
    top_k: int = option(5, ge=1)
    expert_noise: float = option(0.01, ge=0)
    gate2_init: str = option("copy_jitter", choices=GATE2_INITS)
    calib_per_task: int = option(16, ge=1)
    dial_per_task: int = option(20, ge=1)
    dial_iters: int = option(4, ge=1)
    dial_range: float = option(2.0, gt=0)
    dial_targets: list[float] = field(default_factory=lambda: [2.0, 3.0])
    lr: float = option(3e-5, gt=0)
    trainable: str = option("full", choices=TRAINABLE_SETS)
    train_last_layers: int = option(4, ge=0)
    aux_coef_end: float = option(1e-4, ge=0)

    def check(self) -> None:
        super().check()
        require(
            self.baseline_k <= self.num_experts,
            f"baseline_k: expected <= num_experts={self.num_experts}, got {self.baseline_k} "
            f"(--set baseline_k={self.num_experts})",
        )
        if self.moe == "moefy" and self.model == "smollm2":
            recipe = resolve_testbed(self.testbed)
            require(
                (recipe.num_experts, recipe.top_k) == (self.num_experts, self.baseline_k),
                f"baseline_k, num_experts: testbed {self.testbed} is top-{recipe.top_k} of {recipe.num_experts}, "
                f"got top-{self.baseline_k} of {self.num_experts} "
                f"(--set baseline_k={recipe.top_k} --set num_experts={recipe.num_experts})",
            )

    def quick(self) -> DemoConfig:
        """The ``--quick`` variant: tiny random model, a few items of :data:`SMOKE_TASKS` (or of the
        tasks given), seconds."""
        return dataclasses.replace(
            self,
            model="tiny-llama",
            tasks=list(SMOKE_TASKS) if self.tasks == list(MOE_TASKS) else self.tasks,
            train_per_task=8,
            test_per_task=24,
            calib_per_task=6,
            dial_per_task=12,
            epochs=1,
            dial_targets=[1.0],
            dial_iters=3,
            n_boot=200,
        ).validate()


def variant_names(cfg: DemoConfig) -> tuple[str, str]:
    """(baseline, AdaMoE) names in the tables, e.g. ``("top-2", "AdaMoE-m8k3")``."""
    return f"top-{cfg.baseline_k}", f"AdaMoE-m{cfg.null_experts}k{cfg.top_k}"


class Stages:
    """One line per stage with the elapsed time, and the seconds each stage took."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.timings: dict[str, float] = {}
        self._name, self._start = "", 0.0

    def __call__(self, name: str, text: str) -> None:
        """Close the running stage (its time under its name) and announce the next one."""
        now = time.perf_counter()
        if self._name:
            self.timings[self._name] = round(now - self._start, 1)
        self._name, self._start = name, now
        self.done += 1
        print(f"[{self.done}/{self.total} +{now - self.t0:.0f}s] {text}", flush=True)

    def finish(self) -> dict[str, float]:
        """Close the running stage; returns the timings with the ``total``."""
        self("", "writing the report")
        self.timings["total"] = round(time.perf_counter() - self.t0, 1)
        return self.timings


def build_models(cfg: DemoConfig, *, seed: int) -> tuple[Any, Any, Any]:
    """(dense model, tokenizer, MoE): the dense Llama-family model and its MoE made as ``cfg.moe`` says.

    `upcycle`: a Mixtral with copied experts (plus ``expert_noise``). `moefy`: the shared-plus-routed
    Qwen2-MoE; for SmolLM2 the cached build of :func:`adamoe.experiments.moe_model.build_default_moe`,
    for other (tiny, test) models a fresh build calibrated on random token ids.
    """
    from adamoe.hf.models import resolve_model, upcycle

    dense, tok, info = resolve_model(cfg.model, seed=seed)
    if info["kind"] != "dense":
        raise ValueError(
            f"model: the demo starts from a dense Llama-family model, got {cfg.model!r} ({info['kind']})"
        )
    if cfg.moe == "upcycle":
        moe = upcycle(
            dense, seed=seed, num_experts=cfg.num_experts, top_k=cfg.baseline_k, noise_std=cfg.expert_noise
        )
    else:
        moe = _moefied(dense, cfg, seed=seed)
    return dense, tok, moe


def _moefied(dense: Any, cfg: DemoConfig, *, seed: int) -> Any:
    import torch

    from adamoe.experiments.moe_model import build_default_moe
    from adamoe.hf.moefy import moefy
    from adamoe.utils.seeding import derive_generator

    if cfg.model == "smollm2":
        # the model is fixed (seed-0 build, cached); the run seed drives conversion and fine-tuning
        return build_default_moe(recipe=resolve_testbed(cfg.testbed))[0]
    vocab = int(dense.config.vocab_size)
    ids = torch.randint(vocab, (16, 32), generator=derive_generator(seed, "demo.moefy_calib"))
    return moefy(dense, calib_tokens=ids, num_experts=cfg.num_experts, top_k=cfg.baseline_k, seed=seed).model


def make_variants(moe: Any, tok: Any, cfg: DemoConfig, *, seed: int) -> tuple[Any, Any]:
    """(top-k baseline, AdaMoE): the MoE with 0 nulls, and a copy with m nulls and k raised (gate2's
    jitter from the run seed's own ``init`` stream, orthogonal to each layer's mean router input on the
    embedded calibration text, so every layer starts near load k·E/(E+m): :mod:`adamoe.hf.gate2`)."""
    from adamoe.hf.convert import convert
    from adamoe.hf.gate2 import calibration_means

    ada = copy.deepcopy(moe)
    calibration = calibration_means(moe, tok)
    convert(moe, null_experts=0)
    init = seed_stream(seed, "init")
    convert(
        ada,
        null_experts=cfg.null_experts,
        top_k=cfg.top_k,
        gate2_init=cfg.gate2_init,
        seed=init,
        calibration=calibration,
    )
    return moe, ada


def finetune(
    model: Any, tok: Any, data: ExperimentData, cfg: DemoConfig, *, num_null: int, seed: int
) -> dict:
    """Fine-tune `model` in place on the training items; returns the harness's run summary.

    The trainable set is ``cfg.trainable`` limited to the last ``cfg.train_last_layers`` layers (and the
    final norm; the input embedding is frozen too, so backward stops at the first trainable layer); the
    aux-loss recipe is :func:`adamoe.experiments.harness.schedule` (Switch for m = 0, null-aware and
    annealed with nulls), the training order from the seed's ``data`` stream: the same for both variants.
    """
    from adamoe.train.params import train_last_layers

    train_last_layers(model, cfg.trainable, cfg.train_last_layers)
    return train_variant(model, tok, data, cfg, num_null=num_null, seed=seed)


def evaluate_models(
    models: dict[str, Any], tok: Any, data: ExperimentData, cfg: DemoConfig, *, baseline_k: int | None
) -> dict[str, dict[str, Any]]:
    """{name: {task: TaskRun}} on the test items; Load and both FLOPs figures against top-`baseline_k`."""
    return {
        name: score_tasks(m.eval(), tok, data.tests, baseline_k=baseline_k, batch_size=cfg.eval_batch_size)
        for name, m in models.items()
    }


def run_demo(cfg: DemoConfig, *, seed: int, run_dir: Path, command: str | None = None) -> dict[str, Any]:
    """All stages in order; returns the report's tables (rows, paired), timings and paths.

    Seeds ``seed .. seed + cfg.seeds - 1`` each convert, fine-tune and score both variants afresh (the
    dense model is scored once: it has no seed); the dial runs on the first seed's AdaMoE.
    """
    from adamoe.experiments.demo_report import write_demo_report

    seeds = [seed + i for i in range(cfg.seeds)]
    stage = Stages(5 + 3 * len(seeds))
    stage("data", f"loading {', '.join(cfg.tasks)}")
    data = load_data(cfg, calib_per_task=cfg.calib_per_task)
    stage("models", f"loading the dense model and building its MoE ({cfg.moe})")
    dense, tok, moe = build_models(cfg, seed=seed)
    stage("eval_dense", f"evaluating the dense model on {sum(map(len, data.tests.values()))} items")
    dense_run = evaluate_models({"dense": dense}, tok, data, cfg, baseline_k=None)["dense"]
    del dense
    gc.collect()
    names = variant_names(cfg)
    runs: dict[str, list] = {"dense": [dense_run] * len(seeds), **{n: [] for n in names}}
    trained: dict[str, list] = {n: [] for n in names}
    dial: dict[str, Any] = {}
    for s in seeds:
        tag = "" if len(seeds) == 1 else f"_s{s}"
        source = moe if s == seeds[-1] else copy.deepcopy(moe)
        models = dict(zip(names, make_variants(source, tok, cfg, seed=s)))
        for (name, model), m in zip(models.items(), (0, cfg.null_experts)):
            stage(f"train_{name}{tag}", f"fine-tuning {name} (seed {s}) on {len(data.train)} items")
            trained[name].append(finetune(model, tok, data, cfg, num_null=m, seed=s))
        stage(f"eval_moe{tag}", f"evaluating {' and '.join(names)} (seed {s})")
        for name, tasks in evaluate_models(models, tok, data, cfg, baseline_k=cfg.baseline_k).items():
            runs[name].append(tasks)
        if not dial:
            stage("compute_dial", "compute dial (null-logit bias searched on validation items)")
            dial = dial_points(models[names[1]], tok, data, cfg, baseline_k=cfg.baseline_k)
        del models, source
        gc.collect()
    timings = stage.finish()
    return write_demo_report(
        run_dir,
        cfg,
        names=names,
        seeds=seeds,
        runs=runs,
        trained=trained,
        dial=dial,
        timings=timings,
        command=command,
    )
