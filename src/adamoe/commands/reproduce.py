"""``adamoe reproduce molora|moe``: the AdaMoE paper's two experiments at small scale, on its own tasks.

- ``molora`` (paper §4.1): Mo-LoRA on the dense SmolLM2-135M, top-1/top-2 vs AdaMoE m5k4, m7k4, m9k4,
  m5k2 (:mod:`adamoe.experiments.molora`) on RTE, CommonsenseQA, OpenBookQA, SST-2 (for CoLA) and SciQ
  (for ScienceQA).
- ``moe`` (paper §4.2): the shared-plus-routed 8-expert SmolLM2 MoE, fine-tuned top-2 vs AdaMoE (m=8,
  k=3), plus the compute dial and routing sharpness per layer (:mod:`adamoe.experiments.moe`), on
  WinoGrande, HellaSwag, PIQA, SIQA, OpenBookQA and ARC-Challenge.

Data is read offline (``python -m adamoe.vendor_data fetch`` once); models fine-tune on each task's
train part, the only choice (the dial's bias) looks at validation, and the tables report test.

Each writes report.md/.html, metrics.json and PNG plots into the run directory: accuracy per task as the
mean over seeds with a 95% interval (bootstrap over seeds and items), n, chance level, Load per layer,
expert and whole-model FLOPs, and paired AdaMoE-vs-baseline tests (Holm-adjusted). Settings come from
``--config`` (see ``examples/reproduce_<name>.yaml``), ``--set key=value`` and ``--seeds N``; ``--quick``
starts from a smoke-test size (<= 5 min) instead of the default (<= 90 min on 2 cores). Finished
(variant, seed) runs are saved under ``<run-dir>/runs``: rerunning with the same ``--run-dir`` and
settings continues where it stopped.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from adamoe.commands.common import read_settings
from adamoe.runs import run_directory, save_run_config, seed_everything

EXPERIMENTS: dict[str, tuple[str, str, str]] = {
    "molora": ("adamoe.experiments.molora", "MoLoRAExperimentConfig", "run_molora"),
    "moe": ("adamoe.experiments.moe", "MoEExperimentConfig", "run_moe"),
}


def _parts(name: str) -> tuple[Any, Any]:
    """(config class, runner) of an experiment, imported on use (the CLI stays light)."""
    import importlib

    module_name, cls_name, runner = EXPERIMENTS[name]
    module = importlib.import_module(module_name)
    return getattr(module, cls_name), getattr(module, runner)


class CONFIG:
    """The keys of each experiment's config, for ``adamoe reproduce --help``."""

    @staticmethod
    def keys() -> list[str]:
        return [f"[{name}] " + " ".join(_parts(name)[0].keys()) for name in EXPERIMENTS]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS), help="which experiment to reproduce")
    parser.add_argument("--quick", action="store_true", help="smoke-test size: a few minutes on SmolLM2")
    parser.add_argument("--seeds", type=int, help="number of seeds (seed, seed+1, ...); default 3")


def build_config(args: argparse.Namespace) -> Any:
    """The experiment's typed config: its defaults (``--quick``: the smoke-test sizes), then the YAML,
    ``--set`` overrides and ``--seeds``; validated before anything is loaded."""
    cls, _ = _parts(args.experiment)
    settings = read_settings(args, lists=("tasks", "variants", "targets"), seeds=args.seeds)
    base = dict(cls.QUICK) if args.quick else {}
    return cls.from_mapping({**base, **settings}, where="")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from adamoe.eval.report import markdown_table
    from adamoe.experiments.harness import command_text

    cfg = build_config(args)
    _, runner = _parts(args.experiment)
    resolved = {**cfg.resolved(), "experiment": args.experiment, "seed": args.seed, "quick": args.quick}
    print(yaml.safe_dump({"resolved config": resolved}, sort_keys=False).rstrip(), flush=True)
    seed_everything(args.seed)
    with run_directory(args.runs_root, f"reproduce-{args.experiment}", args.run_dir) as run_dir:
        save_run_config(run_dir, resolved)
        command = command_text(
            ["reproduce", args.experiment], argparse.Namespace(**{**vars(args), "run_dir": run_dir})
        )
        out = runner(cfg, seed=args.seed, run_dir=run_dir, command=command)
    print(markdown_table(out["rows"]))
    print(f"\nreport: {out['paths']['html']}")
    return {"rows": out["rows"], "paired": out["paired"], "run_dir": str(run_dir)}
