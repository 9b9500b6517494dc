"""The MoE-RBench suite runner: every dimension on every model, the same way, resumable.

Order of work, chosen so that bad input fails before anything is computed or written:
1. `RBenchConfig.from_dict` (`adamoe.rbench.config`) validates the whole config (unknown keys, values, dimension names,
   model specs — without loading any model);
2. `prepare_suite` checks every model's data needs (`adamoe.rbench.models.check_model_data`), then
   loads every dimension's data (empty data, unreadable files and unreachable hub sets are one-line
   `ValueError`s);
3. `run_suite` loads the models one at a time (only one in memory; every MoE through our dispatch,
   `adamoe.rbench.models`), fine-tunes each with the same recipe (`adamoe.rbench.finetune`, cached),
   runs each dimension through an
   `adamoe.eval.evaluator.ModelEvaluator` with a per-model cache directory, and returns a plain dict (see `run_suite`).
The caller (the CLI) writes the report only after all of this succeeded.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamoe.data.loaders import DataSourceError
from adamoe.eval.evaluator import ModelCall, ModelEvaluator, OnCall, evaluator_factory
from adamoe.rbench.config import RBenchConfig, model_slug
from adamoe.rbench.dimensions.base import Dimension, DimensionResult
from adamoe.rbench.dimensions.registry import build_dimensions
from adamoe.rbench.finetune import finetune_model, load_train_items
from adamoe.rbench.judges import RefusalJudge, ToxicityScorer
from adamoe.rbench.uncertainty import compare_models

__all__ = ["LoadModel", "SuitePlan", "evaluate_model", "prepare_suite", "run_suite"]

LoadModel = Callable[..., tuple[Any, Any, dict[str, Any]]]
"""(spec, *, seed) -> (model, tokenizer, info), like `adamoe.rbench.models.load_model`."""


@dataclass(kw_only=True)
class SuitePlan:
    """Validated config, the dimension objects and their loaded data."""

    config: RBenchConfig
    dimensions: dict[str, Dimension]
    data: dict[str, Any]
    train_items: list[Any] = field(default_factory=list)
    """The fine-tuning MCExamples every model gets (empty when `finetune.enabled` is off)."""

    def sizes(self) -> dict[str, dict[str, int]]:
        """Items per set per dimension."""
        return {name: dim.sizes(self.data[name]) for name, dim in self.dimensions.items()}


def prepare_suite(
    config: RBenchConfig,
    *,
    judge: RefusalJudge | None = None,
    toxicity_scorer: ToxicityScorer | None = None,
    check_model: Callable[[str], None] | None = None,
) -> SuitePlan:
    """Validate and load all data up front; every failure is a one-line ValueError naming the source.

    `check_model` (default `adamoe.rbench.models.check_model_data`, with the config's
    `RBenchConfig.moefy_calib_rows`) checks one model spec's data needs.
    """
    config.validate()
    if check_model is None:
        from adamoe.rbench.models import check_model_data

        check_model = functools.partial(check_model_data, calib_rows=config.moefy_calib_rows())
    for spec in config.models:
        check_model(spec)
    dims = build_dimensions(config, judge=judge, toxicity_scorer=toxicity_scorer)
    data: dict[str, Any] = {}
    for name, dim in dims.items():
        try:
            data[name] = dim.load(limit=config.limit, seed=config.seed)
        except DataSourceError as exc:
            raise ValueError(f"{name}: {exc}") from None
        except ValueError as exc:
            msg = str(exc)
            raise ValueError(msg if msg.startswith(name) else f"{name}: {msg}") from None
        for set_name, n in dim.sizes(data[name]).items():
            if n == 0:
                raise ValueError(f"{name}: set {set_name!r} has no items (empty data)")
    try:
        items = load_train_items(config.finetune) if config.finetune.enabled else []
    except DataSourceError as exc:
        raise ValueError(f"finetune.tasks: {exc}") from None
    return SuitePlan(config=config, dimensions=dims, data=data, train_items=items)


def evaluate_model(
    ev: ModelEvaluator, plan: SuitePlan, *, log: Callable[[str], None] | None = None
) -> dict[str, DimensionResult]:
    """Every planned dimension on one model, in plan order, each metric with its n and interval.

    Each result keeps its wall seconds and the process's CPU seconds over them (all threads): a CPU share
    far below the torch thread count means the run waited for the CPUs (2026-12-07: threads=2 on 2 cores
    shared with another 2-thread job: dense safety 1435 s, the whole run at 0.76 CPUs; one thread on the
    same code, machine loaded: 204 s)."""
    import torch

    from adamoe.runs import seed_everything

    out: dict[str, DimensionResult] = {}
    for name, dim in plan.dimensions.items():
        seed_everything(plan.config.seed)
        started, cpu_started = time.perf_counter(), time.process_time()
        ev.signature()  # a fresh fingerprint for this dimension's outputs
        result = dim.run(ev, plan.data[name], seed=plan.config.seed)
        result.seconds = time.perf_counter() - started
        result.cpu_seconds = time.process_time() - cpu_started
        result.signature = ev.signature()
        out[name] = result.finalize(seed=plan.config.seed)
        if log is not None:
            log(
                f"  {ev.name} · {name}: {result.seconds:.1f}s "
                f"(CPU {result.cpu_seconds:.1f}s, {torch.get_num_threads()} torch threads)"
            )
    return out


def _load(load_model: LoadModel, spec: str, seed: int) -> tuple[Any, Any, dict[str, Any]]:
    """Load one model; any failure becomes a one-line ValueError naming the spec."""
    try:
        return load_model(spec, seed=seed)
    except (ValueError, FileNotFoundError):
        raise
    except Exception as exc:  # a broken folder can fail anywhere inside transformers
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"model {spec!r}: cannot load it ({type(exc).__name__}: {reason})") from exc


def _finetune(
    plan: SuitePlan,
    spec: str,
    model: Any,
    tokenizer: Any,
    *,
    cache_root: str | Path | None,
    on_call: OnCall | None,
    log: Callable[[str], None] | None,
) -> dict[str, Any] | None:
    """The suite's fine-tuning of one model (in place), or None when `finetune.enabled` is off."""
    cfg = plan.config.finetune
    if not cfg.enabled:
        return None
    root = cfg.cache_dir if cfg.cache_dir is not None else cache_root
    folder = Path(root) / "finetuned" / model_slug(spec) if root is not None else None

    def announce() -> None:
        if log is not None:
            log(
                f"{spec}: fine-tuning ({cfg.max_steps} steps of {cfg.batch_size} on {len(plan.train_items)} items)"
            )
        if on_call is not None:
            on_call(ModelCall(kind="train", model=spec, dimension="finetune", stage="finetune", ids=(spec,)))

    return finetune_model(
        model, tokenizer, cfg, items=plan.train_items, seed=plan.config.seed, folder=folder, on_train=announce
    )


def run_suite(
    plan: SuitePlan,
    *,
    cache_root: str | Path | None,
    load_model: LoadModel | None = None,
    on_call: OnCall | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the plan on every model; returns the report dict.

    Result layout: {"models": [spec...], "dims": [...], "sizes": {dim: {set: n}}, "config": {...},
    "results": {spec: {"info": {...}, "seconds": float, "computed": {...},
    "dims": {dim: DimensionResult.to_dict()}}}, "comparisons": `uncertainty.compare_models`}.
    """
    cfg = plan.config
    if load_model is None:  # the quick run's moefied MoE is the cheaper build (RBenchConfig.moefy_calib_rows)
        from adamoe.rbench.models import load_model as load_default

        load_model = functools.partial(load_default, calib_rows=cfg.moefy_calib_rows())
    if cfg.threads is not None:
        import torch

        torch.set_num_threads(cfg.threads)
    results: dict[str, Any] = {}
    for spec in cfg.run_order():
        started = time.perf_counter()
        model, tokenizer, info = _load(load_model, spec, cfg.seed)
        tuned = _finetune(plan, spec, model, tokenizer, cache_root=cache_root, on_call=on_call, log=log)
        ev = evaluator_factory(cfg, on_call=on_call)(
            name=spec,
            model=model,
            tokenizer=tokenizer,
            info=info,
            cache_dir=Path(cache_root) / model_slug(spec) if cache_root is not None else None,
        )
        if log is not None:
            log(f"{spec}: {info.get('kind', '?')} model, {'MoE routing recorded' if ev.is_moe else 'dense'}")
        dims = evaluate_model(ev, plan, log=log)
        results[spec] = {
            "info": {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool, type(None)))},
            "is_moe": ev.is_moe,
            "finetune": tuned,
            "seconds": time.perf_counter() - started,
            "computed": {**ev.computed, "attack_queries": ev.queries},
            "dims": {name: r.to_dict() for name, r in dims.items()},
        }
        del ev, model, tokenizer
        gc.collect()
    out = {
        "title": "MoE-RBench",
        "models": list(cfg.models),
        "dims": list(cfg.dims),
        "sizes": plan.sizes(),
        "config": cfg.to_dict(),
        "results": {m: results[m] for m in cfg.models},
    }
    out["comparisons"] = compare_models(out, seed=cfg.seed)
    return out
