"""Routing analysis of an MoE model: sharpness per layer (AdaMoE Fig. 3), load per layer, per-token load.

Sharpness: the share of tokens that need 1, 2, 3 or 4+ experts to reach 50% of the router mass over
true experts. Per-token load: true experts per token (mean over layers) on ``--text``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from adamoe.commands.common import add_runtime_arguments, load_tasks, model_placement, verb_config
from adamoe.hf.models import ModelSpec
from adamoe.runs import run_directory, save_run_config, seed_everything
from adamoe.utils.config import Config, option
from adamoe.utils.io import atomic_save_json

PLOTS = (
    ("Sharpness", "sharpness.png"),
    ("Load per layer", "load_per_layer.png"),
    ("Per-token load", "token_load.png"),
)


@dataclass(kw_only=True)
class AnalyzeVerbConfig(Config):
    """``adamoe analyze``: routing statistics of ``model`` on ``limit`` items of ``task`` and on ``text``."""

    model: str = "smollm2-adamoe"
    task: str = "synthetic-facts"
    limit: int = option(64, ge=1)
    text: str = "The quick brown fox jumps over the lazy dog because it was bored."

    def check(self) -> None:
        ModelSpec.parse(self.model)


CONFIG = AnalyzeVerbConfig
"""The verb's typed config (listed in ``--help``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``adamoe analyze`` flags."""
    add_runtime_arguments(parser, trackers=False)
    parser.add_argument("--model", help="model spec or folder")
    parser.add_argument("--text", help="text for the per-token load plot")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the routing analysis (``adamoe analyze``); returns its result record."""
    from adamoe.eval.evaluate import evaluate_tasks
    from adamoe.eval.report import results_table, write_report

    cfg = verb_config(AnalyzeVerbConfig, args, model=args.model, text=args.text)
    seed_everything(args.seed)
    tasks = load_tasks([cfg.task], split=None, limit=cfg.limit, seed=args.seed)
    with run_directory(args.runs_root, "analyze", args.run_dir) as run_dir:
        save_run_config(run_dir, {**cfg.to_dict(), "seed": args.seed})
        model, tok, info = ModelSpec.parse(cfg.model).load(seed=args.seed, **model_placement(args))
        if info["kind"] == "dense":
            raise ValueError(f"model: {cfg.model!r} is dense; routing analysis needs an MoE model")
        res = evaluate_tasks(model, tok, tasks, baseline_k=info.get("baseline_k"))[0]
        out = {
            "model": cfg.model,
            "task": cfg.task,
            "load": res.load,
            "expert_flops_pct": res.expert_flops_pct,
            "model_flops_pct": res.model_flops_pct,
            "layers": {
                n: {"load": s["load"], "sharpness": s["sharpness"], "entropy": s["entropy"]}
                for n, s in res.routing["layers"].items()
            },
            "token_load": _token_load(model, tok, cfg.text),
        }
        _plot(cfg, res.routing["layers"], out["token_load"], run_dir)
        atomic_save_json(run_dir / "analysis.json", out)
        table = results_table({cfg.model: [res.row()]})
        plots = [(title, run_dir / name) for title, name in PLOTS]
        write_report(
            run_dir, title=f"analyze {cfg.model} on {cfg.task}", rows=table, plots=plots, metrics=out
        )
    print(f"load {res.load:.3f}; sharpness and per-token load written to {run_dir}")
    return out


def _token_load(model: Any, tok: Any, text: str) -> list[tuple[str, float]]:
    """(token, true experts per token averaged over the MoE layers) for every token of ``text``."""
    import torch

    from adamoe.stats import RoutingRecorder

    enc = tok(text, return_tensors="pt")
    with RoutingRecorder(model, keep_tokens=True) as rec, torch.no_grad():
        model(**enc)
    per_layer = [s.per_token_load for s in rec.layers.values()]
    loads = [sum(col) / len(col) for col in zip(*per_layer)]
    return list(zip([tok.decode([t]) for t in enc["input_ids"][0].tolist()], loads))


def _plot(
    cfg: AnalyzeVerbConfig, layers: dict[str, Any], token_load: list[tuple[str, float]], run_dir: Any
) -> None:
    from adamoe.eval.plots import plot_load_per_layer, plot_sharpness, plot_token_load

    plot_sharpness(layers, run_dir / "sharpness.png", title=f"{cfg.model} on {cfg.task}")
    plot_load_per_layer({cfg.model: layers}, run_dir / "load_per_layer.png")
    tokens, loads = [t for t, _ in token_load], [v for _, v in token_load]
    plot_token_load(tokens, loads, run_dir / "token_load.png", title="true experts per token")
