"""Experiment 2 (the AdaMoE paper's §4.2 at small scale): an MoE fine-tuned as top-k vs AdaMoE arms.

The model is a shared-plus-routed 8-expert SmolLM2 (:func:`adamoe.experiments.moe_model.build_default_moe`,
the ``testbed``; default :data:`~adamoe.experiments.moe_model.DEFAULT_TESTBED`: a 25% shared core + top-4
of 8 co-activation groups with fitted routers, routed experts 27% of the FLOPs, a standard
``Qwen2MoeForCausalLM``), where each routed expert matters (copy-upcycled experts would make "same
accuracy at lower load" vacuous).
Arms (:mod:`adamoe.experiments.arms`), all with the same data, learning rate, epochs and seeds:

- ``top<k>``: converted with m = 0 at k (the baseline ``top4`` is the model's own routing; other k are
  rescaled to the model's k-scaling rule, so top-2 is not doubled);
- ``m8k5`` (AdaMoE, the reference): m = 8 null experts, k raised by one to 5, the paper's option 2, ``gate2``
  initialised ``copy_jitter`` from an independent stream, the paper's annealing (null-aware aux loss,
  tight in epoch 1); ``m8k5-opt1`` and ``m8k5-ste`` let the LM loss reach the null decision; ``-scaled``
  and ``-ste-scaled`` keep each slice at its top-k weight scale (each arm's weighting is a table column);
- the random-null control and the references (untuned MoE, dense model): :mod:`adamoe.experiments.moe_runs`.

All fine-tune LoRA (rank 8) on the router (``gate`` + ``gate2``) and the experts, as in the paper
(:func:`adamoe.hf.peft_utils.lora_config_for`), or the router in full (``full_router``). Per reference
arm seed the compute dial (a null-logit bias found by bisection on validation items,
:mod:`adamoe.eval.dial`) traces accuracy vs load on test items; routing sharpness per layer (paper
Fig. 3) comes from the test-set routing sums; the quality-compute frontier
(:mod:`adamoe.experiments.frontier`) and the seed-level tests (:mod:`adamoe.experiments.seed_stats`)
close the report.

Data (:data:`adamoe.experiments.harness.MOE_TASKS`): the paper's MoE table, WinoGrande, HellaSwag,
PIQA, SIQA, OpenBookQA and ARC-Challenge, read offline; fine-tuning on each task's ``train`` part
(multi-task on the union), the dial's bias search on ``validation``, the tables on ``test``.

Budget basis (2 cores): on the earlier BIG-bench tasks a run trained 64 steps in ~3.5 min and scored
2,400 test items in ~4.5 min; the dial (seed 0) ~6.5 min. Here a run scores 300 test items per task
(ARC-Challenge has 209): 1,709 items of ~556 request characters on average (HellaSwag's four long
endings dominate), ~0.7x the earlier characters, and trains 6 x 32 = 192 pairs (48 steps): ~6 min per
run. Default: 3 arms x 3 seeds (~54 min), the random-null control on 3 trained baselines (~10 min), the
untuned and dense references (~7 min), the dial (~5 min): **~75 min** expected (+3 min if the MoE is
built first), to be confirmed by the first full run. ``--quick`` (:data:`SMOKE_TASKS`, 8 training / 24
test items, 2 epochs of 2 steps, 2 seeds, one dial target): a few minutes.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from adamoe.experiments.arms import Arm, parse_arm
from adamoe.experiments.dial import sharpness_and_dial_plots
from adamoe.experiments.harness import (
    MOE_TASKS,
    SMOKE_TASKS,
    ExperimentConfig,
    RunStore,
    load_data,
    run_summary,
    schedule,
    write_experiment_report,
)
from adamoe.experiments.moe_model import DEFAULT_TESTBED, resolve_testbed
from adamoe.experiments.token_routing import token_routing_table
from adamoe.hf.convert import GATE2_INITS
from adamoe.utils.config import option, require

__all__ = ["MoEExperimentConfig", "arm_weights", "run_moe"]

DEFAULT_MODEL = "moefy"
"""The cached shared-plus-routed SmolLM2 MoE (built on first use, ~minutes, then loaded from disk)."""


@dataclass(kw_only=True)
class MoEExperimentConfig(ExperimentConfig):
    """``adamoe reproduce moe``: top-k vs AdaMoE arms on an MoE (``examples/reproduce_moe.yaml``)."""

    QUICK: ClassVar[dict[str, Any]] = {
        "tasks": list(SMOKE_TASKS),
        "train_per_task": 8,
        "test_per_task": 24,
        "calib_per_task": 8,
        "dial_per_task": 12,
        "dial_targets": [3.0],
        "dial_iters": 4,
        "epochs": 2,
        "seeds": 2,
        "heldout_per_task": 4,
    }

    model: str = DEFAULT_MODEL
    testbed: str = DEFAULT_TESTBED
    """Which moefied SmolLM2 (:data:`adamoe.experiments.moe_model.TESTBEDS`) when ``model`` is moefy."""
    tasks: list[str] = field(default_factory=lambda: list(MOE_TASKS))
    train_per_task: int = option(32, ge=1)
    test_per_task: int = option(300, ge=1)
    lr: float = option(5e-5, gt=0)
    arms: list[str] = field(default_factory=lambda: ["top2", "top4", "m8k5", "m8k5-ste"])
    """Trained arms (:func:`adamoe.experiments.arms.parse_arm`): top<k>, m<m>k<k> (option 2, the
    paper's), m<m>k<k>-opt1, -ste, -scaled, -ste-scaled. The first arm with nulls is the reference AdaMoE
    arm (the random-null control takes its Load and, scaled or not, its weighting)."""
    baseline: str = "top4"
    """The top-k arm every other arm is tested against (and whose k sets the FLOPs percentages)."""
    gate2_init: str = option("copy_jitter", choices=GATE2_INITS)
    lora_rank: int = option(8, ge=1)
    lora_alpha: int = option(16, ge=1)
    lora_targets: list[str] = field(default_factory=lambda: ["router", "experts"])
    full_router: bool = False
    """Train the router weight and gate2 in full (then ``router`` must not be a LoRA target)."""
    rescale_topk: bool = True
    """Top-k arms at another k than the moefied model's get its k-scaling (``set_top_k``): top-1 not doubled."""
    random_null: bool = True
    """Score the random-null control at the reference arm's per-layer Load on each trained baseline."""
    heldout_per_task: int = option(30, ge=0)
    token_routing_texts: int = option(60, ge=0)
    """Held-out texts on which each AdaMoE arm's true experts per token are read before and after
    training (:mod:`adamoe.experiments.token_routing`); 0 skips the reading."""
    """Held-out texts per task of :data:`adamoe.experiments.moe_model.HELDOUT_TASKS` (the frontier's NLL)."""
    dense_reference: bool = True
    """Also score the dense model the default MoE was made from (a frontier reference; moefy only)."""
    calib_per_task: int = option(16, ge=1)
    dial_per_task: int = option(50, ge=1)
    dial_targets: list[float] = field(default_factory=lambda: [2.0, 3.0])
    dial_iters: int = option(8, ge=1)
    dial_range: float = option(2.0, gt=0)
    dial_seeds: int = option(1, ge=1)
    """The compute dial runs on the first ``dial_seeds`` seeds of the reference AdaMoE arm."""
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
            not (self.full_router and "router" in self.lora_targets),
            "full_router: the router trains in full, so drop it from LoRA (--set lora_targets=experts)",
        )
        require(
            all(t > 0 for t in self.dial_targets),
            f"dial_targets: expected loads > 0, got {self.dial_targets}",
        )
        arms = self.parsed_arms()
        require(len(set(self.arms)) == len(self.arms), f"arms: duplicates in {self.arms}")
        require(
            self.baseline in self.arms and parse_arm(self.baseline).m == 0,
            f"baseline: expected one of the top-k arms in {self.arms}, got {self.baseline!r}",
        )
        require(
            not self.random_null or any(a.m > 0 for a in arms),
            "random_null: needs an AdaMoE arm to match (--set arms=top2,m8k3 or --set random_null=false)",
        )
        if self.model != DEFAULT_MODEL:
            from adamoe.hf.models import ModelSpec

            ModelSpec.parse(self.model)
        else:
            recipe = resolve_testbed(self.testbed)
            require(
                all(a.k <= recipe.num_experts + a.m for a in arms),
                f"arms: k above the testbed's {recipe.num_experts} experts + m nulls in {self.arms}",
            )

    def parsed_arms(self) -> list[Arm]:
        return [parse_arm(a) for a in self.arms]

    def reference_arm(self) -> Arm | None:
        """The first arm with nulls: the dial and the random-null control refer to it."""
        return next((a for a in self.parsed_arms() if a.m > 0), None)

    def resolved(self) -> dict[str, Any]:
        """The config plus each arm's m, k, weighting and aux-loss recipe (annealing where nulls exist)."""
        return {
            **self.to_dict(),
            "recipes": {
                a.name: {"m": a.m, "k": a.k, "weights": a.kind, **schedule(self, num_null=a.m)}
                for a in self.parsed_arms()
            },
        }


def load_moe(cfg: MoEExperimentConfig, *, log=print) -> tuple[Any, Any, int]:
    """(unconverted MoE model, tokenizer, its top-k): the cached moefied SmolLM2, or ``cfg.model``."""
    if cfg.model == DEFAULT_MODEL:
        from adamoe.experiments.moe_model import build_default_moe, resolve_testbed

        model, tok, _ = build_default_moe(recipe=resolve_testbed(cfg.testbed), log=log)
    else:
        from adamoe.hf.models import ModelSpec

        model, tok, info = ModelSpec.parse(cfg.model).load(routed=False)
        require(
            info.get("kind") == "moe",
            f"model: expected an unconverted MoE model, got {cfg.model!r} ({info.get('kind')})",
        )
    return model.eval(), tok, int(model.config.num_experts_per_tok)


def _references(
    moe: Any, tok: Any, data: Any, cfg: MoEExperimentConfig, store: RunStore, seed: int, texts: list[str]
) -> list[str]:
    """Score the references not yet saved (``untuned``; ``dense`` for the default MoE); their names."""
    from adamoe.experiments.moe_runs import dense_reference, untuned_reference

    names = []
    if cfg.reference:
        names.append("untuned")
        if store.get("untuned", seed) is None:
            k = parse_arm(cfg.baseline).k
            store.put("untuned", seed, **untuned_reference(moe, tok, data, cfg, baseline_k=k, texts=texts))
    if cfg.dense_reference and cfg.model == DEFAULT_MODEL:
        names.append("dense")
        if store.get("dense", seed) is None:
            store.put("dense", seed, **dense_reference(tok, data, cfg, texts=texts))
    return names


def _todo(cfg: MoEExperimentConfig, store: RunStore, seeds: list[int]) -> list[tuple[Arm, int]]:
    """Missing (arm, seed) runs, per seed AdaMoE arms first: a baseline run then finds its seed's
    reference arm saved and scores the random-null control too (rerun when only the control is missing)."""
    ref = cfg.reference_arm()
    control = f"random-{ref.name}" if cfg.random_null and ref else None
    out = []
    for s in seeds:
        for arm in sorted(cfg.parsed_arms(), key=lambda a: a.name == cfg.baseline):
            missing = store.get(arm.name, s) is None
            if missing or (arm.name == cfg.baseline and control and store.get(control, s) is None):
                out.append((arm, s))
    return out


def run_moe(
    cfg: MoEExperimentConfig, *, seed: int, run_dir: Path, log=print, command: str | None = None
) -> dict[str, Any]:
    """Every (arm, seed) run not yet saved in ``run_dir/runs``, then the report; returns its tables."""
    from adamoe.experiments.moe_model import heldout_texts
    from adamoe.experiments.moe_runs import one_run, random_control_run

    started = time.perf_counter()
    data = load_data(cfg, calib_per_task=cfg.calib_per_task)
    texts = heldout_texts(cfg.heldout_per_task) if cfg.heldout_per_task else []
    moe, tok, _ = load_moe(cfg, log=log)
    k = parse_arm(cfg.baseline).k
    ref = cfg.reference_arm()
    control = f"random-{ref.name}" if cfg.random_null and ref else None
    store, seeds = RunStore(run_dir, cfg.to_dict()), [seed + i for i in range(cfg.seeds)]
    todo = _todo(cfg, store, seeds)
    log(
        f"moe: {len(cfg.arms)} arms x {len(seeds)} seeds; {len(todo)} runs to do, {len(data.train)} training items"
    )
    references = _references(moe, tok, data, cfg, store, seeds[0], texts)
    for i, (arm, s) in enumerate(todo, 1):
        t0 = time.perf_counter()
        dial = ref is not None and arm.name == ref.name and s in seeds[: cfg.dial_seeds]
        result, model = one_run(moe, tok, data, cfg, arm=arm, seed=s, baseline_k=k, texts=texts, dial=dial)
        if control and arm.name == cfg.baseline:
            matched = store.get(ref.name, s)
            store.put(
                control,
                s,
                **random_control_run(
                    model,
                    tok,
                    data,
                    cfg,
                    reference=matched,
                    seed=s,
                    baseline_k=k,
                    texts=texts,
                    weights=ref.control_weights,
                ),
            )
        store.put(arm.name, s, **result)
        del model
        gc.collect()
        log(
            f"[{i}/{len(todo)} +{time.perf_counter() - started:.0f}s] {arm.name} seed {s}: "
            f"{time.perf_counter() - t0:.0f}s; {run_summary(result['tasks'])}"
        )
    return _report(cfg, run_dir, store, seeds, references, control, data, started, command)


def _report(
    cfg: MoEExperimentConfig,
    run_dir: Path,
    store: RunStore,
    seeds: list[int],
    references: list[str],
    control: str | None,
    data: Any,
    started: float,
    command: str | None,
) -> dict[str, Any]:
    """Tables, seed-level tests, the frontier, dial and sharpness plots from the saved runs."""
    from adamoe.experiments.frontier import arm_data, frontier_report
    from adamoe.experiments.tables import stats_rng

    tested = [*cfg.arms, *([control] if control else [])]
    saved = {v: [store.get(v, s) for s in seeds] for v in tested}
    saved |= {r: [store.get(r, seeds[0])] * len(seeds) for r in references}
    runs = {v: [d["tasks"] for d in saved[v]] for v in [*references, *tested]}
    ref = cfg.reference_arm()
    dials = [d["dial"] for d in saved[ref.name] if "dial" in d] if ref else []
    plots = sharpness_and_dial_plots(run_dir, runs, dials, list(cfg.arms)) if ref else []
    frontier = [a.name for a in cfg.parsed_arms() if a.m == 0]
    weights = arm_weights(cfg, control)
    points = {
        v: arm_data(runs, v, [d.get("heldout") for d in saved[v]] if _has_heldout(saved[v]) else None)
        for v in runs
    }
    blocks, more, fmetrics = frontier_report(
        run_dir,
        points,
        frontier=frontier,
        tested=[v for v in tested if v not in frontier],
        baseline=cfg.baseline,
        rng=stats_rng(cfg.stats_seed, "frontier"),
        n_boot=cfg.n_boot,
        dial=[p for d in dials for p in d["curve"]],
        weights=weights,
    )
    k = parse_arm(cfg.baseline).k
    per_token = token_routing_table({a.name: saved[a.name] for a in cfg.parsed_arms() if a.m})
    return write_experiment_report(
        run_dir,
        title=f"MoE ({cfg.model}): fine-tuned top-k vs AdaMoE arms (paper §4.2 analog)",
        runs=runs,
        cfg=cfg,
        baseline=cfg.baseline,
        baseline_k=k,
        references=references,
        notes=_notes(cfg, data, seeds, dict(zip(seeds, dials)), time.perf_counter() - started, k, control),
        plots=[*plots, *more],
        metrics={"config": cfg.resolved(), "seeds": seeds, "dial": dials, **fmetrics},
        command=command,
        extra=[*blocks, *([per_token] if per_token else [])],
        weights=weights,
    )


def arm_weights(cfg: MoEExperimentConfig, control: str | None) -> dict[str, str]:
    """Each variant's weighting, a column of the report's tables: the arms' kinds, the control's as the
    arm it matches, ``opt2`` for the untuned MoE (its own routing); the dense model has none."""
    ref = cfg.reference_arm()
    out = {"untuned": "opt2", **{a.name: a.kind for a in cfg.parsed_arms()}}
    return out | ({control: ref.control_weights} if control and ref else {})


def _has_heldout(runs: list[dict[str, Any]]) -> bool:
    """Whether every saved run of a variant holds held-out NLL sums."""
    return all("heldout" in d for d in runs)


def _notes(
    cfg: MoEExperimentConfig,
    data: Any,
    seeds: list[int],
    dials: dict[int, dict],
    seconds: float,
    k: int,
    control: str | None,
) -> list[str]:
    curve = "; ".join(
        f"seed {s}: "
        + ", ".join(
            f"bias {p['bias']:+.3f} load {p['load']:.2f} acc {100 * p['acc']:.1f}" for p in d["curve"]
        )
        for s, d in dials.items()
    )
    recipes = "; ".join(f"{n}: {r}" for n, r in cfg.resolved()["recipes"].items())
    return [
        f"Tasks ({len(cfg.tasks)}): {', '.join(cfg.tasks)}; fine-tuned on their train parts, the dial's "
        "bias searched on validation, every table on test (disjoint hash parts).",
        f"Training: multi-task on {cfg.train_per_task} training items per task ({len(data.train)} pairs), "
        f"{cfg.epochs} epochs, batch {cfg.batch_size}, lr {cfg.lr}; seeds {seeds}.",
        f"LoRA rank {cfg.lora_rank} (alpha {cfg.lora_alpha}) on {', '.join(cfg.lora_targets)} "
        f"(router = gate + gate2){'; router and gate2 trained in full' if cfg.full_router else ''}.",
        "Arms (weights: opt2 = the paper's option 2, opt1 = option 1, ste = option 2 + straight-through "
        "split gradient, scaled = option 2 x (true picks / the model's top-k), ste-scaled = scaled + "
        f"straight-through), gate2 init {cfg.gate2_init}: {recipes}.",
        f"Random-null control: {control or 'off'} (the trained {cfg.baseline} keeping a random number of its "
        "best experts per token, at the reference arm's per-layer Load of the same seed, weighted as "
        f"{arm_weights(cfg, control).get(control or '', 'none')}).",
        f"FLOPs: expert FLOPs vs top-{k}; whole-model FLOPs per token vs the same model at top-{k} "
        "(shared expert, attention, LM head included); the frontier uses FLOPs per token itself.",
        f"Compute dial ({cfg.dial_per_task} test items per task): {curve or 'none'}.",
        f"References (not tested): 'untuned' = the MoE before fine-tuning at its top-k; 'dense' = the "
        f"dense model. Wall time of this invocation: {seconds:.0f} s "
        "(runs already in the run folder are loaded, not repeated).",
    ]
