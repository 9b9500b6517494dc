"""Fine-tune a model on a multiple-choice task with the router aux loss applied and annealed.

The model is a spec or folder (see ``adamoe.hf.models``); a ``convert:`` section (the keyword arguments
of :func:`adamoe.hf.convert.convert`) adds null experts first; the ``train:`` section is a
:class:`adamoe.train.TrainConfig` (``--set train.lr=1e-4``). Checkpoints go to ``<run-dir>/train`` and
``--resume`` continues the latest one; the final model is saved to ``<run-dir>/model`` and, with
``eval_examples > 0``, evaluated on the task's test split.

``train.trainable=lora`` (or ``lora+router``) on a model without LoRA injects it first (the ``lora:``
section, :class:`adamoe.train.lora.LoRASettings`: router + experts on converted MoE models, attention and
MLP projections on dense ones) and merges it into the saved model. A Mo-LoRA folder (``adamoe convert
--mode molora``) trains its adapters and is saved the same way (base model + adapters). With null
experts present the paper's annealing is the default (null-aware aux loss, ``aux_coef`` in epoch 1,
``aux_coef_end`` after); ``train.*`` keys given explicitly win. The resolved config is printed and saved.

Multi-process (``torchrun`` or ``accelerate launch --config_file examples/accelerate/{ddp,fsdp}.yaml``):
every process runs the verb; the process group is formed first, rank 0 chooses the run directory and
broadcasts it, all processes train (checkpoints hold every process's share), the final model is gathered
(FSDP too) and written by rank 0, which alone evaluates and writes the report. ``--resume`` needs the same
number of processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamoe.commands.common import add_runtime_arguments, read_settings, runtime_flags
from adamoe.hf.models import ModelSpec
from adamoe.runs import run_directory, save_run_config, seed_everything
from adamoe.train.config import TrainConfig
from adamoe.train.lora import LoRASettings
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
    lora: LoRASettings = field(default_factory=LoRASettings)

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


PAPER_ANNEALING = {"aux_loss": "null_aware", "aux_schedule": "step", "aux_boundary": "epoch"}
"""The aux-loss recipe with null experts (paper: a tight coefficient in epoch 1, a loose one after)."""


def _config(args: argparse.Namespace) -> tuple[TrainVerbConfig, set[str]]:
    """The verb config and the ``train.*`` keys given explicitly (config file or ``--set``); ``train.seed``
    defaults to ``--seed``, output_dir/resume come from the run."""
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
    return TrainVerbConfig.from_mapping(settings, where=""), set(train)


def resolve_train(train: TrainConfig, model: Any, explicit: set[str]) -> TrainConfig:
    """``train`` with the paper's annealing (:data:`PAPER_ANNEALING`) filled in where ``model`` has null
    experts and the key was not given explicitly; unchanged without nulls."""
    from adamoe.routing.source import routing_sources

    if not any(src.num_null > 0 for _, src in routing_sources(model)):
        return train
    return dataclasses.replace(train, **{k: v for k, v in PAPER_ANNEALING.items() if k not in explicit})


def _prepare(model: Any, cfg: TrainVerbConfig, *, seed: int) -> tuple[Any, bool]:
    """(model to train, whether LoRA was injected here). A Mo-LoRA model keeps its base frozen."""
    from adamoe.hf.molora import molora_modules
    from adamoe.train.lora import apply_lora, needs_lora

    if molora_modules(model):
        require(
            cfg.train.trainable != "full",
            "train.trainable: 'full' would change the frozen base of a Mo-LoRA model; "
            "use --set train.trainable=adapters",
        )
    if needs_lora(model, cfg.train.trainable):
        return apply_lora(model, cfg.lora, seed=seed), True
    return model, False


def _save(model: Any, out: Path, *, tok: Any, spec: ModelSpec) -> None:
    """A converted/plain model via ``save_model``; a Mo-LoRA model as its (frozen, unchanged) base files
    linked or copied from the source folder plus the trained adapters."""
    from adamoe.commands.common import save_model
    from adamoe.hf.molora import ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, molora_modules, save_molora

    if not molora_modules(model):
        save_model(model, tok, out)
        return
    require(spec.path is not None, f"model: {spec.text!r}: a Mo-LoRA model must come from a saved folder")
    out.mkdir(parents=True, exist_ok=True)
    for item in spec.path.iterdir():
        if item.is_file() and item.name not in (ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE):
            try:
                os.link(item, out / item.name)
            except OSError:
                shutil.copy2(item, out / item.name)
    save_molora(model, out)


@contextmanager
def _shared_run_dir(args: argparse.Namespace, *, main: bool) -> Iterator[Path]:
    """The run directory: chosen (and, on failure, marked) by the main process, its path broadcast to the
    others, so ``torchrun``/``accelerate launch`` gives one directory, not one per process."""
    from adamoe.train.accelerator import broadcast_from_main

    if not main:
        yield Path(broadcast_from_main(None))
        return
    with run_directory(args.runs_root, "train", args.run_dir) as path:
        broadcast_from_main(str(path))
        yield path


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the fine-tuning (``adamoe train``); returns its result record.

    Under ``torchrun``/``accelerate launch`` every process runs this: the process group is formed first,
    all processes train, and only the main process writes the model, the evaluation and the report.
    """
    import yaml

    from adamoe.bench.malloc import tune_malloc

    tune_malloc()  # glibc: re-use freed activations instead of re-faulting them every step (issue 20)
    from adamoe.commands.common import load_tasks
    from adamoe.train import mc_to_pairs, train
    from adamoe.train.accelerator import end_distributed, start_distributed, weights_on_main_only

    cfg, explicit = _config(args)
    main = start_distributed(cfg.train.device).is_main_process
    seed_everything(args.seed)
    spec = ModelSpec.parse(cfg.model)
    data = load_tasks([cfg.task], split="train", limit=cfg.train_examples, seed=args.seed)
    with _shared_run_dir(args, main=main) as run_dir:
        # Under FSDP with cpu-RAM-efficient loading, ranks > 0 build on the meta device and get rank 0's
        # weights at prepare(); the embedded SmolLM2 (135 M, from_pretrained only) loads on every rank.
        on_main = weights_on_main_only() if spec.source != "smollm2" else nullcontext()
        with on_main:
            model, tok, info = spec.load(seed=args.seed, routed=not cfg.convert)
            if cfg.convert:
                from adamoe.hf.convert import convert

                convert(model, seed=args.seed, **cfg.convert)
            model, injected = _prepare(model, cfg, seed=args.seed)
        tcfg = resolve_train(cfg.train, model, explicit)
        resolved = {**cfg.to_dict(), "train": tcfg.to_dict(), "lora_injected": injected, "seed": args.seed}
        if main:
            print(yaml.safe_dump({"resolved config": resolved}, sort_keys=False).rstrip(), flush=True)
            save_run_config(run_dir, resolved)
        tcfg = dataclasses.replace(tcfg, output_dir=str(run_dir / "train"))
        pairs = mc_to_pairs(next(iter(data.values())))
        save = functools.partial(_save, tok=tok, spec=spec)
        result = train(model, tok, pairs, tcfg, final_dir=run_dir / "model", save_fn=save)
        out: dict[str, Any] = {
            "final_loss": result.final_loss,
            "steps": result.steps,
            "trainable": result.trainable,
            "aux_schedule": tcfg.aux_schedule,
        }
        if cfg.eval_examples > 0 and result.model is not None:  # the main process's merged model
            out["eval"] = _evaluate(result.model, tok, cfg, info, run_dir, seed=args.seed, metrics=dict(out))
    end_distributed()
    if not main:
        return out
    if "eval" in out:
        from adamoe.eval.report import markdown_table

        print(markdown_table(out["eval"]))
    print(f"final loss {result.final_loss}; written to {run_dir}")
    return out


def _evaluate(
    model: Any,
    tok: Any,
    cfg: TrainVerbConfig,
    info: dict[str, Any],
    run_dir: Path,
    *,
    seed: int,
    metrics: Any,
) -> list[dict[str, Any]]:
    """Score the trained model on the task's test split and write the run's report; returns the table."""
    from adamoe.commands.common import load_tasks
    from adamoe.eval.evaluate import evaluate_tasks
    from adamoe.eval.report import results_table, write_report

    tests = load_tasks([cfg.task], split="test", limit=cfg.eval_examples, seed=seed)
    rows = evaluate_tasks(model.eval(), tok, tests, baseline_k=info.get("baseline_k"))
    table = results_table({cfg.model: [r.row() for r in rows]})
    write_report(run_dir, title=f"train {cfg.model} on {cfg.task}", rows=table, metrics={"train": metrics})
    return table
