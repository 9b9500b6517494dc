"""The stages of ``adamoe demo``: data, models, fine-tuning, evaluation, compute dial, report.

1. Load SmolLM2-135M-Instruct (dense) and upcycle it to an 8-expert top-2 Mixtral (experts copied, so
   the MoE equals the dense model at init; a little expert noise makes the experts distinguishable).
2. Fine-tune a top-2 baseline (Switch aux loss) and an AdaMoE model (m null experts, top-k, null-aware
   aux loss annealed tight → loose) the same way, briefly, on a generated offline task.
3. Evaluate dense, top-2 and AdaMoE: Acc, Load, %FLOPs vs top-2; sharpness and load per layer.
4. Compute dial: null-logit bias searched on a calibration split to hit target loads; accuracy vs load.
5. Write metrics.json, report.md, report.html and the PNG plots into the run directory.

Each stage is a function of the config and the previous stages' outputs, so an experiment can reuse
them (e.g. a different model builder) and the command stays a thin verb (:func:`run_demo`).
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

__all__ = [
    "DemoConfig",
    "DemoData",
    "build_models",
    "compute_dial",
    "evaluate_models",
    "finetune",
    "load_data",
    "make_variants",
    "run_demo",
    "write_demo_report",
]


@dataclass(kw_only=True)
class DemoConfig(Config):
    """Every knob of the demo (``examples/demo.yaml`` spells out the defaults)."""

    model: str = "smollm2"
    moe: str = option("upcycle", choices=MOE_BUILDS)
    task: str = "synthetic-facts"
    num_experts: int = option(8, ge=1)
    baseline_k: int = option(2, ge=1)
    null_experts: int = option(DEFAULT_NULL, ge=0)
    top_k: int = option(DEFAULT_TOP_K, ge=1)
    expert_noise: float = option(0.01, ge=0)
    gate2_init: str = option("copy_jitter", choices=GATE2_INITS)
    train_examples: int = option(96, ge=1)
    eval_examples: int = option(100, ge=1)
    calib_examples: int = option(24, ge=1)
    dial_examples: int = option(100, ge=1)
    dial_iters: int = option(10, ge=1)
    dial_range: float = option(0.5, gt=0)
    dial_targets: list[float] = field(default_factory=lambda: [1.0, 1.25])
    batch_size: int = option(8, ge=1)
    epochs: int = option(2, ge=1)
    lr: float = option(3e-5, gt=0)
    trainable: str = option("full", choices=TRAINABLE_SETS)
    train_last_layers: int = option(4, ge=0)
    aux_coef: float = option(1e-2, ge=0)
    aux_coef_end: float = option(1e-4, ge=0)
    z_loss_coef: float = option(0.0, ge=0)
    eval_batch_size: int = option(32, ge=1)

    def check(self) -> None:
        require(
            self.baseline_k <= self.num_experts,
            f"baseline_k: expected <= num_experts={self.num_experts}, got {self.baseline_k} "
            f"(--set baseline_k={self.num_experts})",
        )

    def quick(self) -> DemoConfig:
        """The ``--quick`` variant: tiny random model, a few items, seconds."""
        return dataclasses.replace(
            self,
            model="tiny-llama",
            train_examples=32,
            eval_examples=24,
            calib_examples=12,
            dial_examples=24,
            epochs=1,
            dial_targets=[1.0],
            dial_iters=4,
        ).validate()


class Stages:
    """One line per stage with the elapsed time; the inner loops draw their own tqdm bars."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.timings: dict[str, float] = {}

    def __call__(self, text: str) -> None:
        self.done += 1
        print(f"[{self.done}/{self.total} +{time.perf_counter() - self.t0:.0f}s] {text}", flush=True)

    def tick(self, name: str, t0: float) -> None:
        """Record the seconds since `t0` under `name`."""
        self.timings[name] = round(time.perf_counter() - t0, 1)


@dataclass
class DemoData:
    """The items of one run: training, calibration (dial search) and test splits of ``cfg.task``."""

    task: str
    train: list
    calib: list
    test: list
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tasks(self) -> dict[str, list]:
        return {self.task: self.test}


def load_data(cfg: DemoConfig, *, seed: int) -> DemoData:
    """The task's train / validation (dial calibration) / test splits, sizes from `cfg`; any
    `load_task` name (generated tasks use `seed`; ``bigbench:<task>`` reads the cached tarball)."""
    from adamoe.data import load_task

    def split(name: str, limit: int) -> list:
        return load_task(cfg.task, split=name, limit=limit, seed=seed)

    return DemoData(
        task=cfg.task,
        train=split("train", cfg.train_examples),
        calib=split("validation", cfg.calib_examples),
        test=split("test", cfg.eval_examples),
    )


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
        recipe = MoeRecipe(num_experts=cfg.num_experts, top_k=cfg.baseline_k, seed=seed)
        return build_default_moe(recipe=recipe)[0]
    vocab = int(dense.config.vocab_size)
    ids = torch.randint(vocab, (16, 32), generator=derive_generator(seed, "demo.moefy_calib"))
    return moefy(dense, calib_tokens=ids, num_experts=cfg.num_experts, top_k=cfg.baseline_k, seed=seed).model


def make_variants(moe: Any, cfg: DemoConfig, *, seed: int) -> tuple[Any, Any]:
    """(top-k baseline, AdaMoE): the MoE with 0 nulls, and a copy with m nulls and k raised."""
    from adamoe.hf.convert import convert

    ada = copy.deepcopy(moe)
    convert(moe, null_experts=0)
    convert(ada, null_experts=cfg.null_experts, top_k=cfg.top_k, gate2_init=cfg.gate2_init, seed=seed)
    return moe, ada


def finetune(
    model: Any, tok: Any, data: DemoData, cfg: DemoConfig, *, name: str, adaptive: bool, out: Path, seed: int
) -> Any:
    """Fine-tune `model` in place on the training split; returns the `TrainResult`.

    The trainable set is ``cfg.trainable`` limited to the last ``cfg.train_last_layers`` layers. The
    baseline uses the Switch aux loss at a constant coefficient; AdaMoE (`adaptive`) the null-aware loss,
    tight in epoch 1 and loose after (the paper's annealing).
    """
    from adamoe.train import TrainConfig, mc_to_pairs, select_trainable, train
    from adamoe.train.params import freeze_all_but_last_layers

    select_trainable(model, cfg.trainable)
    freeze_all_but_last_layers(model, cfg.train_last_layers)
    config = TrainConfig(
        lr=cfg.lr,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=seed,
        aux_loss="null_aware" if adaptive else "switch",
        aux_schedule="step" if adaptive else "constant",
        aux_coef=cfg.aux_coef,
        aux_coef_end=cfg.aux_coef_end,
        aux_boundary="epoch",
        z_loss_coef=cfg.z_loss_coef,
        trainable="adapters",
        output_dir=str(out / "train" / name),
        max_length=256,
    )
    return train(model, tok, mc_to_pairs(data.train), config)


def evaluate_models(
    models: dict[str, Any], tok: Any, data: DemoData, cfg: DemoConfig, *, baseline_k: int | None
) -> dict[str, list]:
    """{name: [TaskResult per task]} on the test split; Load and FLOPs against the top-`baseline_k` MoE."""
    from adamoe.eval.evaluate import evaluate_tasks

    return {
        name: evaluate_tasks(m.eval(), tok, data.tasks, baseline_k=baseline_k, batch_size=cfg.eval_batch_size)
        for name, m in models.items()
    }


def compute_dial(ada: Any, tok: Any, data: DemoData, cfg: DemoConfig) -> tuple[list[dict], list[dict]]:
    """(searches, curve): null-logit biases hitting ``cfg.dial_targets`` loads on the calibration split,
    then accuracy and load on the first ``cfg.dial_examples`` test items at each bias (and at 0)."""
    from adamoe.eval.dial import dial_curve, search_null_bias, set_null_bias
    from adamoe.eval.evaluate import evaluate_tasks

    def score(m: Any, tasks: dict[str, list]) -> Any:
        kwargs = {"baseline_k": cfg.baseline_k, "progress": False, "batch_size": cfg.eval_batch_size}
        return evaluate_tasks(m, tok, tasks, **kwargs)[0]

    def test_point(m: Any) -> dict[str, float]:
        r = score(m, {data.task: data.test[: cfg.dial_examples]})
        return {"acc": r.acc, "load": r.load}

    searches = [
        search_null_bias(
            ada,
            lambda m: score(m, {"calib": data.calib}).load,
            target_load=t,
            low=-cfg.dial_range,
            high=cfg.dial_range,
            iters=cfg.dial_iters,
            tol=0.05,
        )
        for t in cfg.dial_targets
    ]
    curve = dial_curve(ada, test_point, sorted({0.0, *(s["bias"] for s in searches)}))
    set_null_bias(ada, 0.0)
    return searches, curve


def _plots(run_dir: Path, base: Any, ada: Any, curve: list[dict], k0: int) -> list[tuple[str, Path]]:
    """(caption, PNG) for sharpness of both MoEs, load per layer and the dial curve."""
    from adamoe.eval.plots import plot_dial, plot_load_per_layer, plot_sharpness

    base_layers, ada_layers = base.routing["layers"], ada.routing["layers"]
    return [
        (
            "Routing sharpness, top-2 baseline (share of tokens needing n experts for 50% of router mass)",
            plot_sharpness(base_layers, run_dir / "sharpness_top2.png", title="top-2 baseline"),
        ),
        (
            "Routing sharpness, AdaMoE",
            plot_sharpness(ada_layers, run_dir / "sharpness_adamoe.png", title="AdaMoE"),
        ),
        (
            "Load per layer",
            plot_load_per_layer(
                {f"top-{k0}": base_layers, "AdaMoE": ada_layers}, run_dir / "load_per_layer.png"
            ),
        ),
        (
            "Accuracy vs load along the compute dial",
            plot_dial(curve, run_dir / "compute_dial.png", baseline={"acc": base.acc, "load": float(k0)}),
        ),
    ]


def write_demo_report(run_dir: Path, cfg: DemoConfig, results: dict[str, Any]) -> tuple[list[dict], dict]:
    """(paper table rows, written paths) from the collected `results` (see :func:`run_demo`)."""
    from adamoe.eval.report import results_table, write_report

    k0 = cfg.baseline_k
    base, ada = results["eval"]["base"][0], results["eval"]["ada"][0]
    table = results_table(results["rows"])
    trained = results["train"]
    paths = write_report(
        run_dir,
        title=f"adamoe demo: top-{k0} vs AdaMoE on {'moefied' if cfg.moe == 'moefy' else 'upcycled'} {cfg.model}",
        rows=table,
        sections=[("Setup and notes", _notes(cfg, results))],
        plots=_plots(run_dir, base, ada, results["curve"], k0),
        metrics={
            "config": cfg.to_dict(),
            "timings_s": results["timings"],
            "dial": {"searches": results["searches"], "curve": results["curve"]},
            "routing": {"top2": base.routing, "adamoe": ada.routing},
            "train": {"top2": trained["base"].history, "adamoe": trained["ada"].history},
        },
    )
    return table, paths


def run_demo(cfg: DemoConfig, *, seed: int, run_dir: Path) -> dict[str, Any]:
    """All stages in order; returns {"rows": paper table, "timings": seconds, "paths": report files}."""
    stage, started = Stages(8), time.perf_counter()
    data = load_data(cfg, seed=seed)
    stage("loading and upcycling the dense model")
    t0 = time.perf_counter()
    dense, tok, moe = build_models(cfg, seed=seed)
    stage.tick("load_and_upcycle", t0)
    stage("evaluating the dense model")
    t0 = time.perf_counter()
    dense_res = evaluate_models({"dense": dense}, tok, data, cfg, baseline_k=None)["dense"]
    rows = {"dense": [r.row() for r in dense_res]}
    stage.tick("eval_dense", t0)
    del dense
    gc.collect()
    base, ada = make_variants(moe, cfg, seed=seed)
    trained = {}
    labels = {"base": f"top-{cfg.baseline_k} baseline", "ada": f"AdaMoE m={cfg.null_experts} k={cfg.top_k}"}
    for key, model in (("base", base), ("ada", ada)):
        label = labels[key]
        stage(f"fine-tuning {label}")
        t0 = time.perf_counter()
        name = "top2" if key == "base" else "adamoe"
        trained[key] = finetune(
            model, tok, data, cfg, name=name, adaptive=key == "ada", out=run_dir, seed=seed
        )
        stage.tick(f"train_{name}", t0)
    stage(f"evaluating top-{cfg.baseline_k} and AdaMoE")
    t0 = time.perf_counter()
    evals = evaluate_models({"base": base, "ada": ada}, tok, data, cfg, baseline_k=cfg.baseline_k)
    rows[f"top-{cfg.baseline_k}"] = [r.row() for r in evals["base"]]
    rows[f"AdaMoE m{cfg.null_experts}k{cfg.top_k}"] = [r.row() for r in evals["ada"]]
    stage.tick("eval_moe", t0)
    stage("compute dial (null-logit bias)")
    t0 = time.perf_counter()
    searches, curve = compute_dial(ada, tok, data, cfg)
    stage.tick("compute_dial", t0)
    stage("writing the report")
    timings = {**stage.timings, "total": round(time.perf_counter() - started, 1)}
    results = {"rows": rows, "eval": evals, "train": trained, "searches": searches, "curve": curve}
    table, paths = write_demo_report(run_dir, cfg, {**results, "timings": timings})
    stage("done")
    return {"rows": table, "timings": timings, "paths": paths}


def _notes(cfg: DemoConfig, results: dict[str, Any]) -> str:
    base, ada = results["train"]["base"], results["train"]["ada"]
    searches, curve = results["searches"], results["curve"]
    lines = [
        f"Task: {cfg.task}, {cfg.train_examples} training / {cfg.eval_examples} test items (at most).",
        f"MoE: dense {cfg.model} upcycled to {cfg.num_experts} copied experts (noise std {cfg.expert_noise})."
        if cfg.moe == "upcycle"
        else f"MoE: dense {cfg.model} moefied: 50% shared core + {cfg.num_experts} routed co-activation "
        "groups, routers fitted to the groups' activation mass (adamoe.hf.moefy).",
        f"Fine-tuning: trainable={cfg.trainable}, {cfg.epochs} epochs, lr {cfg.lr}; top-2 with the Switch loss, "
        f"AdaMoE with the null-aware loss, coefficient {cfg.aux_coef} in epoch 1 then {cfg.aux_coef_end}.",
        f"Final train loss: top-2 {base.final_loss:.4f}, AdaMoE {ada.final_loss:.4f}.",
        "%FLOPs: expert FLOPs relative to the top-2 baseline (= 100 · load / 2); router FLOPs grow by m/E of a tiny linear.",
        "Compute dial searches: "
        + "; ".join(
            f"target {s['target_load']} → bias {s['bias']:+.4f}, calib load {s['load']:.3f}" for s in searches
        ),
        "Dial curve: "
        + "; ".join(f"bias {p['bias']:+.4f}: load {p['load']:.3f}, acc {100 * p['acc']:.1f}" for p in curve),
        "Timings (s): " + ", ".join(f"{k} {v}" for k, v in results["timings"].items()),
    ]
    return "\n".join(lines)
