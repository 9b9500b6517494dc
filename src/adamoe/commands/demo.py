"""``adamoe demo``: dense vs fine-tuned top-2 vs AdaMoE on the paper's MoE-table tasks, offline, <= 15 min.

A reduced MoE table (WinoGrande, HellaSwag, PIQA, SIQA, OpenBookQA, ARC-Challenge; 150 test items
each, 95% CIs) on the cached shared-plus-routed SmolLM2 MoE. The stages (data, models,
fine-tuning, evaluation, compute dial, report) live in :mod:`adamoe.experiments.demo`; this verb reads
the config, makes the run directory and prints the table and the findings (significant or not).
"""

from __future__ import annotations

import argparse
from typing import Any

from adamoe.commands.common import verb_config
from adamoe.experiments.demo import DemoConfig
from adamoe.runs import make_run_dir, save_run_config, seed_everything

CONFIG = DemoConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="tiny random model, seconds: a smoke run of the pipeline"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from adamoe.eval.report import markdown_table
    from adamoe.experiments.demo import run_demo
    from adamoe.experiments.harness import command_text

    cfg = verb_config(DemoConfig, args, lists=("tasks",))  # --set tasks=piqa,siqa
    if args.quick:
        cfg = cfg.quick()
    run_dir = make_run_dir(args.runs_root, "demo", args.run_dir)
    save_run_config(run_dir, {**cfg.to_dict(), "seed": args.seed})
    seed_everything(args.seed)
    command = command_text(["demo"], argparse.Namespace(**{**vars(args), "run_dir": run_dir}))
    out = run_demo(cfg, seed=args.seed, run_dir=run_dir, command=command)
    print(markdown_table(out["rows"]))
    print("\n" + "\n".join(out["findings"]))
    print(f"\ntotal {out['timings']['total']} s; report: {out['paths']['html']}")
    return {"rows": out["rows"], "paired": out["paired"], "timings": out["timings"], "run_dir": str(run_dir)}
