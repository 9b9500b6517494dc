"""Fine-tune a model on a multiple-choice task with the router aux loss applied and annealed.

The model is a spec or folder (see ``adamoe.hf.models``); a ``convert:`` section (the keyword arguments
of :func:`adamoe.hf.convert.convert`) adds null experts first; the ``train:`` section is a
:class:`adamoe.train.TrainConfig` (``--set train.lr=1e-4``). Checkpoints go to ``<run-dir>/train`` and
``--resume`` continues the latest one; the final model is saved to ``<run-dir>/model`` and, with
``eval_examples > 0``, evaluated on the task's test split.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from adamoe.commands.common import add_runtime_arguments, read_settings, runtime_flags, save_model
from adamoe.hf.models import ModelSpec
from adamoe.runs import run_directory, save_run_config, seed_everything
from adamoe.train.config import TrainConfig
from adamoe.utils.config import Config, option, require

_RUN_DIR = "<run-dir>/train"  # placeholder until the run directory exists (validation comes first)


@dataclass(kw_only=True)
class TrainVerbConfig(Config):
    """``adamoe train``: which model and task, how many items, the optional conversion, the training."""

    model: str = "smollm2-moe"
    task: str = "synthetic-facts"
    train_examples: int = option(200, ge=1)
    eval_examples: int = option(100, ge=0)
    convert: dict[str, Any] | None = None
    train: TrainConfig = field(default_factory=TrainConfig)

    def check(self) -> None:
        ModelSpec.parse(self.model)
        if self.convert:
            from adamoe.hf.convert import ConvertConfig

            valid = [f.name for f in dataclasses.fields(ConvertConfig) if f.name != "seed"]
            unknown = sorted(set(self.convert) - set(valid))
            require(
                not unknown, f"convert: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}"
            )
            try:
                ConvertConfig(**self.convert).validate()
            except ValueError as err:
                raise ValueError(f"convert.{err}") from None


CONFIG = TrainVerbConfig
"""The verb's typed config (listed in ``--help``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``adamoe train`` flags."""
    parser.add_argument("--model", help="model spec or folder")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --run-dir"
    )
    add_runtime_arguments(parser)


def _config(args: argparse.Namespace) -> TrainVerbConfig:
    """The verb config; ``train.seed`` defaults to ``--seed``, output_dir/resume come from the run."""
    require(
        not args.resume or bool(args.run_dir), "--resume: needs --run-dir pointing at the interrupted run"
    )
    settings = read_settings(args, model=args.model)
    train = settings.get("train") or {}
    require(isinstance(train, dict), f"train: expected a mapping, got {train!r}")
    settings["train"] = {
        "seed": args.seed,
        **train,
        **runtime_flags(args),
        "output_dir": _RUN_DIR,
        "resume": args.resume,
    }
    return TrainVerbConfig.from_mapping(settings, where="")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the fine-tuning (``adamoe train``); returns its result record."""
    from adamoe.commands.common import load_tasks
    from adamoe.eval.evaluate import evaluate_tasks
    from adamoe.eval.report import markdown_table, results_table, write_report
    from adamoe.train import mc_to_pairs, train

    cfg = _config(args)
    seed_everything(args.seed)
    data = load_tasks([cfg.task], split="train", limit=cfg.train_examples, seed=args.seed)
    with run_directory(args.runs_root, "train", args.run_dir) as run_dir:
        save_run_config(run_dir, {**cfg.to_dict(), "seed": args.seed})
        tcfg = dataclasses.replace(cfg.train, output_dir=str(run_dir / "train"))
        model, tok, info = ModelSpec.parse(cfg.model).load(seed=args.seed, routed=not cfg.convert)
        if cfg.convert:
            from adamoe.hf.convert import convert

            convert(model, seed=args.seed, **cfg.convert)
        result = train(model, tok, mc_to_pairs(next(iter(data.values()))), tcfg)
        save_model(model, tok, run_dir / "model")
        out: dict[str, Any] = {"final_loss": result.final_loss, "steps": result.steps}
        if cfg.eval_examples > 0:
            tests = load_tasks([cfg.task], split="test", limit=cfg.eval_examples, seed=args.seed)
            rows = evaluate_tasks(model.eval(), tok, tests, baseline_k=info.get("baseline_k"))
            table = results_table({cfg.model: [r.row() for r in rows]})
            write_report(
                run_dir, title=f"train {cfg.model} on {cfg.task}", rows=table, metrics={"train": out}
            )
            out["eval"] = table
    if "eval" in out:
        print(markdown_table(out["eval"]))
    print(f"final loss {result.final_loss}; written to {run_dir}")
    return out
