"""The stages of ``adamoe demo``: a reduced, honest version of experiment 2 (:mod:`adamoe.experiments.moe`).

1. Data: four real BIG-bench multiple-choice tasks, one per paper category, read offline from the
   cached sdist, chosen by a stated cost criterion, not by results: among
   :data:`adamoe.data.bigbench.PAPER_TASKS` (each with >= 300 test items, chosen where the dense base
   model beats chance on the validation split) the one with the shortest p95 prompt per category:
   ``social_iqa`` (commonsense, 320 characters, 3 choices), ``strategyqa`` (knowledge/science, 94),
   ``epistemic_reasoning`` (NLI, 498) and ``logical_fallacy_detection`` (reading/logic, 282). 250 test
   items each (the first of the deterministic test split), 64 training items each from the train split
   (multi-task fine-tuning on their union), validation items for the compute-dial search.
   ``--quick`` and the experiments' smoke runs use :data:`SMOKE_TASKS`, the two cheapest of them.
2. Models: the dense SmolLM2-135M-Instruct and its shared-plus-routed 8-expert MoE (``moe: moefy``:
   50% shared core + 8 routed co-activation groups with fitted routers, a standard Qwen2-MoE, built once
   and cached by :func:`adamoe.experiments.moe_model.build_default_moe`); ``moe: upcycle`` keeps the
   copied-expert Mixtral (where AdaMoE vs top-2 is close to vacuous, see issue 9).
3. Fine-tuning, same budget for both: top-2 (m = 0, Switch aux loss) and AdaMoE (m = 8 nulls, k = 3,
   via :func:`adamoe.hf.convert.convert`; null-aware aux loss annealed tight in epoch 1 -> loose after).
   Trainable: ``cfg.trainable`` limited to the last ``cfg.train_last_layers`` decoder layers, so
   backward stops early and a step costs ~1-3 s on 2 cores.
4. Evaluation of dense, top-2 and AdaMoE on the same items (per-item records: :class:`TaskRun`), and the
   compute dial (null-logit bias by bisection on validation items, accuracy vs load on test items).
5. Report (:mod:`adamoe.experiments.demo_report`): accuracy with n, 95% CI and chance, the paired
   AdaMoE - top-2 difference (CI, McNemar p, stated plainly when not significant), Load per layer and
   mean, expert and whole-model FLOPs vs top-2, sharpness and dial plots.

Budget basis (2 cores, quiet machine): the two-task version of this demo (128 training pairs, 2 x 250
test items) took 197 s; four tasks double the training and evaluation: ~7-8 min, plus ~3 min to build
the cached MoE once. ``--quick``: the tiny random Llama on a few items of :data:`SMOKE_TASKS`.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamoe.hf.convert import GATE2_INITS
from adamoe.hf.models import DEFAULT_NULL, DEFAULT_TOP_K
from adamoe.train.config import TRAINABLE_SETS
from adamoe.utils.config import Config, option, require

MOE_BUILDS = ("upcycle", "moefy")
"""How the MoE is made from the dense model: copied experts (`upcycle`), or a shared core + routed
co-activation groups with fitted routers (`moefy`, :mod:`adamoe.hf.moefy`; cached for SmolLM2)."""

DEMO_TASKS = [
    "bigbench:social_iqa",
    "bigbench:strategyqa",
    "bigbench:epistemic_reasoning",
    "bigbench:logical_fallacy_detection",
]
"""Per paper category, the cheapest-to-score paper task (see the module docstring)."""

SMOKE_TASKS = ["bigbench:strategyqa", "bigbench:logical_fallacy_detection"]
"""The two cheapest demo tasks (2 choices, p95 prompts 94 and 282 characters): smoke runs in the tests."""

__all__ = [
    "DEMO_TASKS",
    "SMOKE_TASKS",
    "DemoConfig",
    "DemoData",
    "build_models",
    "evaluate_models",
    "finetune",
    "load_data",
    "make_variants",
    "run_demo",
    "variant_names",
]


@dataclass(kw_only=True)
class DemoConfig(Config):
    """Every knob of the demo (``examples/demo.yaml`` spells out the defaults); sizes are per task."""

    model: str = "smollm2"
    moe: str = option("moefy", choices=MOE_BUILDS)
    tasks: list[str] = field(default_factory=lambda: list(DEMO_TASKS))
    num_experts: int = option(8, ge=1)
    baseline_k: int = option(2, ge=1)
    null_experts: int = option(DEFAULT_NULL, ge=0)
    top_k: int = option(DEFAULT_TOP_K, ge=1)
    expert_noise: float = option(0.01, ge=0)
    gate2_init: str = option("copy_jitter", choices=GATE2_INITS)
    train_examples: int = option(64, ge=1)
    eval_examples: int = option(250, ge=1)
    calib_per_task: int = option(16, ge=1)
    dial_per_task: int = option(100, ge=1)
    dial_iters: int = option(6, ge=1)
    dial_range: float = option(2.0, gt=0)
    dial_targets: list[float] = field(default_factory=lambda: [1.0, 1.5])
    batch_size: int = option(8, ge=1)
    epochs: int = option(2, ge=1)
    lr: float = option(3e-5, gt=0)
    max_length: int = option(256, ge=8)
    trainable: str = option("full", choices=TRAINABLE_SETS)
    train_last_layers: int = option(4, ge=0)
    aux_coef: float = option(1e-2, ge=0)
    aux_coef_end: float = option(1e-4, ge=0)
    anneal: bool = True
    eval_batch_size: int = option(32, ge=1)
    stats_seed: int = 0
    n_boot: int = option(2000, ge=100)

    def check(self) -> None:
        require(
            self.baseline_k <= self.num_experts,
            f"baseline_k: expected <= num_experts={self.num_experts}, got {self.baseline_k} "
            f"(--set baseline_k={self.num_experts})",
        )
        require(bool(self.tasks), "tasks: expected at least one task (--set tasks=bigbench:a,bigbench:b)")
        require(len(set(self.tasks)) == len(self.tasks), f"tasks: expected distinct names, got {self.tasks}")

    def quick(self) -> DemoConfig:
        """The ``--quick`` variant: tiny random model, a few items of :data:`SMOKE_TASKS` (or of the
        tasks given), seconds."""
        return dataclasses.replace(
            self,
            model="tiny-llama",
            tasks=list(SMOKE_TASKS) if self.tasks == DEMO_TASKS else self.tasks,
            train_examples=8,
            eval_examples=24,
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


@dataclass
class DemoData:
    """Training items (union over tasks), calibration items (dial search) and test items per task."""

    train: list
    calib: list
    tests: dict[str, list]


def load_data(cfg: DemoConfig, *, seed: int) -> DemoData:
    """Each task's first ``train_examples`` training, ``calib_per_task`` validation and ``eval_examples``
    test items (deterministic splits; generated tasks use `seed`; ``bigbench:`` reads the cached tarball)."""
    from adamoe.data import load_task

    def split(task: str, name: str, limit: int) -> list:
        return list(load_task(task, split=name, limit=limit, seed=seed))

    train, calib, tests = [], [], {}
    for task in cfg.tasks:
        train += split(task, "train", cfg.train_examples)
        calib += split(task, "validation", cfg.calib_per_task)
        tests[task] = split(task, "test", cfg.eval_examples)
        require(bool(tests[task]), f"tasks: {task!r} has no test items")
    return DemoData(train=train, calib=calib, tests=tests)


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

    from adamoe.experiments.moe_model import MoeRecipe, build_default_moe
    from adamoe.hf.moefy import moefy
    from adamoe.utils.seeding import derive_generator

    if cfg.model == "smollm2":
        # the model is fixed (seed-0 build, cached); the run seed drives conversion and fine-tuning
        recipe = MoeRecipe(num_experts=cfg.num_experts, top_k=cfg.baseline_k)
        return build_default_moe(recipe=recipe)[0]
    vocab = int(dense.config.vocab_size)
    ids = torch.randint(vocab, (16, 32), generator=derive_generator(seed, "demo.moefy_calib"))
    return moefy(dense, calib_tokens=ids, num_experts=cfg.num_experts, top_k=cfg.baseline_k, seed=seed).model


def make_variants(moe: Any, tok: Any, cfg: DemoConfig, *, seed: int) -> tuple[Any, Any]:
    """(top-k baseline, AdaMoE): the MoE with 0 nulls, and a copy with m nulls and k raised (gate2's
    jitter from the run seed's own ``init`` stream, orthogonal to each layer's mean router input on the
    embedded calibration text, so every layer starts near load k·E/(E+m): :mod:`adamoe.hf.gate2`)."""
    from adamoe.experiments.harness import seed_stream
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


def finetune(model: Any, tok: Any, data: DemoData, cfg: DemoConfig, *, num_null: int, seed: int) -> dict:
    """Fine-tune `model` in place on the training items; returns the harness's run summary.

    The trainable set is ``cfg.trainable`` limited to the last ``cfg.train_last_layers`` layers (and the
    final norm; the input embedding is frozen too, so backward stops at the first trainable layer); the
    aux-loss recipe is :func:`adamoe.experiments.harness.schedule` (Switch for m = 0, null-aware and
    annealed with nulls), the training order from the seed's ``data`` stream: the same for both variants.
    """
    from adamoe.experiments.harness import train_variant
    from adamoe.train.params import train_last_layers

    train_last_layers(model, cfg.trainable, cfg.train_last_layers)
    return train_variant(model, tok, data, cfg, num_null=num_null, seed=seed)


def evaluate_models(
    models: dict[str, Any], tok: Any, data: DemoData, cfg: DemoConfig, *, baseline_k: int | None
) -> dict[str, dict[str, Any]]:
    """{name: {task: TaskRun}} on the test items; Load and both FLOPs figures against top-`baseline_k`."""
    from adamoe.experiments.harness import score_tasks

    return {
        name: score_tasks(m.eval(), tok, data.tests, baseline_k=baseline_k, batch_size=cfg.eval_batch_size)
        for name, m in models.items()
    }


def run_demo(cfg: DemoConfig, *, seed: int, run_dir: Path) -> dict[str, Any]:
    """All stages in order; returns the report's tables (rows, paired), timings and paths."""
    from adamoe.experiments.demo_report import write_demo_report
    from adamoe.experiments.moe import dial_points

    stage = Stages(8)
    stage("data", f"loading {', '.join(cfg.tasks)}")
    data = load_data(cfg, seed=seed)
    stage("models", f"loading the dense model and building its MoE ({cfg.moe})")
    dense, tok, moe = build_models(cfg, seed=seed)
    stage("eval_dense", f"evaluating the dense model on {sum(map(len, data.tests.values()))} items")
    runs = {"dense": evaluate_models({"dense": dense}, tok, data, cfg, baseline_k=None)["dense"]}
    del dense
    gc.collect()
    names = variant_names(cfg)
    models = dict(zip(names, make_variants(moe, tok, cfg, seed=seed)))
    trained = {}
    for (name, model), m in zip(models.items(), (0, cfg.null_experts)):
        stage(f"train_{name}", f"fine-tuning {name} on {len(data.train)} items x {cfg.epochs} epochs")
        trained[name] = finetune(model, tok, data, cfg, num_null=m, seed=seed)
    stage("eval_moe", f"evaluating {' and '.join(names)}")
    runs.update(evaluate_models(models, tok, data, cfg, baseline_k=cfg.baseline_k))
    stage("compute_dial", "compute dial (null-logit bias searched on validation items)")
    dial = dial_points(models[names[1]], tok, data, cfg, baseline_k=cfg.baseline_k)
    timings = stage.finish()
    return write_demo_report(run_dir, cfg, runs=runs, trained=trained, dial=dial, timings=timings)
