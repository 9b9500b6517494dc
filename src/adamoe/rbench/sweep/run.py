"""Run the sweep: each point loads a fresh model, fine-tunes it with the point's knobs, runs the bench.

A finished point is saved as `sweep/<id>.json` (atomic) and skipped when the sweep is re-run in the
same directory; item caches make an interrupted point cheap to redo.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adamoe.eval.report import json_safe
from adamoe.rbench.config import RBenchConfig, model_slug
from adamoe.rbench.data.formats import nli_to_mc, text_label_to_mc
from adamoe.rbench.data.generated import generate_nli, generate_sentiment
from adamoe.rbench.dimensions import DimensionResult
from adamoe.rbench.dimensions.ood import TRAIN_SEED_OFFSET, TrainFn
from adamoe.rbench.evaluator import ModelCall, OnCall, build_evaluator
from adamoe.rbench.runner import LoadModel, SuitePlan, evaluate_model, prepare_suite
from adamoe.rbench.sweep.config import SweepConfig, grid_points, point_label
from adamoe.utils.io import atomic_save_json

__all__ = ["prepare_sweep", "run_sweep", "train_pairs"]


def train_pairs(sources: Sequence[str], *, n: int, seed: int) -> list[Any]:
    """Training items (MCExamples; the trainer uses the context and correct choice) from generated sets."""
    out: list[Any] = []
    for src in sources:
        head, _, domain = src.partition(":")
        if head == "nli":
            out += [nli_to_mc(it) for it in generate_nli(n, seed=seed)]
        else:
            out += [
                text_label_to_mc(it) for it in generate_sentiment(n, seed=seed, domain=domain or "product")
            ]
    return out


def prepare_sweep(sweep: SweepConfig, suite: RBenchConfig, **injections: Any) -> SuitePlan:
    """The suite plan the sweep evaluates: the sweep's dims on the sweep's model, data loaded up front."""
    sweep.validate()
    cfg = dataclasses.replace(suite, models=[sweep.model], dims=list(sweep.dims))
    return prepare_suite(cfg, **injections)


def _routing_means(dims: Mapping[str, DimensionResult]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, r in dims.items():
        shift = (r.routing or {}).get("shift", {})
        js = [s["js_mean"] for s in shift.values() if s.get("js_mean") is not None]
        dl = [s["delta_load"] for s in shift.values()]
        out[f"{name}.js"] = sum(js) / len(js) if js else None
        out[f"{name}.dload"] = sum(dl) / len(dl) if dl else None
    return out


@dataclass(frozen=True, kw_only=True)
class _SweepRun:
    """What every point of one sweep shares: where it writes, how it loads and trains, what it reports to."""

    sweep: SweepConfig
    plan: SuitePlan
    run_dir: Path
    train_fn: TrainFn
    load_model: LoadModel
    on_call: OnCall | None
    log: Callable[[str], None] | None
    base: Mapping[str, Any] | None
    pairs: list[Any]


def _train_point(
    run: _SweepRun, pid: str, point: Mapping[str, Any] | None, model: Any, tokenizer: Any
) -> dict[str, Any]:
    """Fine-tune `model` in place with the point's knobs (nothing for the no-fine-tune point)."""
    from adamoe.train import TrainConfig

    if point is None:
        return {}
    sweep = run.sweep
    tcfg = TrainConfig.from_dict({**sweep.train, **point, "progress": False, "seed": run.plan.config.seed})
    if run.on_call is not None:
        run.on_call(ModelCall(kind="train", model=sweep.model, dimension="sweep", stage=pid, ids=(pid,)))
    out = run.train_fn(model, tokenizer, run.pairs, tcfg)
    model.eval()
    return {"final_loss": getattr(out, "final_loss", None), "steps": getattr(out, "steps", None)}


def _run_point(run: _SweepRun, pid: str, point: Mapping[str, Any] | None) -> dict[str, Any]:
    """One point: a fresh model (same seed), its fine-tuning, the planned dimensions; the table row."""
    from adamoe.runs import seed_everything

    cfg, model_spec = run.plan.config, run.sweep.model
    seed_everything(cfg.seed)
    model, tokenizer, info = run.load_model(model_spec, seed=cfg.seed)
    train_info = _train_point(run, pid, point, model, tokenizer)
    ev = build_evaluator(
        cfg,
        name=f"{model_spec}[{pid}]",
        model=model,
        tokenizer=tokenizer,
        info=info,
        cache_dir=run.run_dir / "cache" / model_slug(model_spec) / pid,
        on_call=run.on_call,
    )
    dims = evaluate_model(ev, run.plan, log=run.log)
    return json_safe(
        {
            "id": pid,
            "knobs": point,
            "label": point_label(point, run.base),
            "train": train_info,
            "metrics": {f"{d}.{k}": v for d, r in dims.items() for k, v in r.metrics.items()},
            "routing": _routing_means(dims) if ev.is_moe else {},
        }
    )


def run_sweep(
    sweep: SweepConfig,
    plan: SuitePlan,
    *,
    run_dir: str | Path,
    train_fn: TrainFn | None = None,
    load_model: LoadModel | None = None,
    on_call: OnCall | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every point (skipping points already saved in `run_dir/sweep/`); returns the table dict."""
    if train_fn is None:
        from adamoe.train import train as train_fn
    if load_model is None:
        from adamoe.rbench.models import load_model
    run_dir = Path(run_dir)
    points: list[dict[str, Any] | None] = list(grid_points(sweep.grid, mode=sweep.mode))
    base = points[0]  # the baseline knobs, before the no-fine-tune point goes first
    if sweep.include_base:
        points.insert(0, None)
    run = _SweepRun(
        sweep=sweep,
        plan=plan,
        run_dir=run_dir,
        train_fn=train_fn,
        load_model=load_model,
        on_call=on_call,
        log=log,
        base=base,
        pairs=train_pairs(sweep.train_data, n=sweep.train_n, seed=plan.config.seed + TRAIN_SEED_OFFSET),
    )
    rows = []
    for i, point in enumerate(points):
        pid = f"p{i:02d}"
        done_path = run_dir / "sweep" / f"{pid}.json"
        if done_path.is_file():
            saved = json.loads(done_path.read_text())
            if saved.get("knobs") == json_safe(point):
                rows.append(saved)
                continue
        row = _run_point(run, pid, point)
        atomic_save_json(done_path, row)
        rows.append(row)
        if log is not None:
            log(f"sweep {pid} ({row['label']}) done")
    return {
        "model": sweep.model,
        "mode": sweep.mode,
        "grid": sweep.grid,
        "dims": list(sweep.dims),
        "rows": rows,
    }
