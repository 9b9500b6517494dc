"""Run the sweep: for every seed, the MoE arm at every point and the dense arm at every distinct recipe.

One run = a fresh model (init seed), the suite's fine-tune recipe with the point's knobs (data order and
dropout from the seed's own streams, `adamoe.utils.seeding`), then the planned dimensions. The two arms
of one seed share the data order, so their difference is paired by seed as well as by item. The dense
arm skips MoE-only knobs (`MOE_ONLY_KNOBS`): it runs once per distinct remaining recipe. A finished run
is saved as `sweep/<arm>-<point>-s<seed>.json` (atomic) and read back when the sweep is re-run in the
same directory; item caches (shared across seeds, keyed by model fingerprint) make a redo cheap.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from adamoe.eval.report import json_safe
from adamoe.rbench.config import RBenchConfig, model_slug
from adamoe.rbench.data.formats import nli_to_mc, text_label_to_mc
from adamoe.rbench.data.generated import generate_nli, generate_sentiment
from adamoe.rbench.dimensions import DimensionResult
from adamoe.rbench.dimensions.ood import TRAIN_SEED_OFFSET, TrainFn
from adamoe.rbench.evaluator import ModelCall, OnCall, build_evaluator
from adamoe.rbench.finetune import mark_trainable
from adamoe.rbench.runner import LoadModel, SuitePlan, evaluate_model, prepare_suite
from adamoe.rbench.sweep.config import SweepConfig, dense_recipe, grid_points, point_label
from adamoe.rbench.sweep.stats import summarise
from adamoe.utils.config import require
from adamoe.utils.io import atomic_save_json
from adamoe.utils.seeding import derive_generator

__all__ = ["Recipe", "RunSpec", "data_order", "plan_runs", "prepare_sweep", "run_sweep", "train_pairs"]


def train_pairs(sources: Sequence[str], *, n: int, seed: int) -> list[Any]:
    """Smoke training items (MCExamples; the trainer uses the context and correct choice), generated."""
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
    """The plan both arms are evaluated on: the sweep's dims, data and training items loaded up front.

    Training items: the suite's `finetune.tasks` train splits through the finetune module's loader
    (`prepare_suite`, which also refuses tasks that are evaluated), or the generated smoke sources.
    `suite.quick` switches `sweep` to its quick settings (`SweepConfig.apply_quick`), in place.
    """
    sweep.validate()
    if suite.quick:
        sweep.apply_quick()
    real = sweep.train_data is None
    cfg = dataclasses.replace(
        suite,
        models=[sweep.model, sweep.dense],
        dims=list(sweep.dims),
        finetune=dataclasses.replace(suite.finetune, enabled=real),
    )
    plan = prepare_suite(cfg, **injections)
    if not real:
        plan.train_pairs = train_pairs(sweep.train_data, n=sweep.train_n, seed=cfg.seed + TRAIN_SEED_OFFSET)
    return plan


def _stream_int(seed: int, purpose: str) -> int:
    """A seed in [0, 2^31) from the `purpose` stream of `seed` (numpy's global seeding needs < 2^32)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=derive_generator(seed, purpose)))


def data_order(items: Sequence[Any], seed: int) -> list[Any]:
    """`items` in the training order of `seed` (its own `sweep.data_order` stream; both arms share it)."""
    perm = torch.randperm(len(items), generator=derive_generator(seed, "sweep.data_order"))
    return [items[int(i)] for i in perm]


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """One row of the table: the MoE point, and which dense run stands beside it."""

    pid: str
    label: str
    knobs: dict[str, Any] | None
    dense_pid: str
    """The point whose dense run has this recipe's dense knobs (itself unless an MoE-only knob differs)."""

    @property
    def dense_na(self) -> bool:
        return self.dense_pid != self.pid


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """One training + evaluation: arm ('moe' or 'dense'), model, point, seed, the knobs applied."""

    arm: str
    spec: str
    pid: str
    seed: int
    knobs: dict[str, Any] | None

    @property
    def id(self) -> str:
        return f"{self.arm}-{self.pid}-s{self.seed}"


def plan_runs(sweep: SweepConfig, *, seed: int) -> tuple[list[Recipe], list[RunSpec]]:
    """Table rows and the runs behind them, seeds outermost (a stopped sweep has whole seeds done)."""
    points: list[dict[str, Any] | None] = list(grid_points(sweep.grid, mode=sweep.mode))
    base = points[0]
    if sweep.include_base:
        points.insert(0, None)
    recipes: list[Recipe] = []
    first_with: dict[str, str] = {}  # dense knobs (as JSON) -> the first point running them
    for i, point in enumerate(points):
        pid = f"p{i:02d}"
        dense = dense_recipe(point, base)
        dense_pid = first_with.setdefault(json.dumps(dense, sort_keys=True), pid)
        recipes.append(Recipe(pid=pid, label=point_label(point, base), knobs=point, dense_pid=dense_pid))
    runs: list[RunSpec] = []
    for s in range(sweep.seeds):
        for r in recipes:
            runs.append(RunSpec(arm="moe", spec=sweep.model, pid=r.pid, seed=seed + s, knobs=r.knobs))
            if not r.dense_na:
                knobs = dense_recipe(r.knobs, base)
                runs.append(RunSpec(arm="dense", spec=sweep.dense, pid=r.pid, seed=seed + s, knobs=knobs))
    return recipes, runs


@dataclass(frozen=True, kw_only=True)
class _Sweep:
    """What every run of one sweep shares: where it writes, how it loads and trains, what it reports to."""

    sweep: SweepConfig
    plan: SuitePlan
    run_dir: Path
    train_fn: TrainFn
    load_model: LoadModel
    on_call: OnCall | None
    log: Callable[[str], None] | None


def _train(run: _Sweep, spec: RunSpec, model: Any, tokenizer: Any) -> dict[str, Any]:
    """Fine-tune `model` in place: the suite's finetune recipe + sweep overrides + the point's knobs."""
    from adamoe.train import TrainConfig

    if spec.knobs is None:
        return {}
    ft = run.plan.config.finetune
    fields: dict[str, Any] = {
        "lr": ft.lr,
        "max_steps": ft.max_steps,
        "batch_size": ft.batch_size,
        "max_length": ft.max_length,
        "aux_coef": ft.aux_coef,
        "trainable": "adapters",  # = the finetune recipe's set, chosen by `mark_trainable` below
        **run.sweep.train,
        **spec.knobs,
    }
    fields.setdefault("aux_coef_end", fields["aux_coef"])  # a constant coefficient, as in the finetune
    tcfg = TrainConfig.from_dict({**fields, "progress": False, "seed": _stream_int(spec.seed, "sweep.train")})
    mark_trainable(model, ft)
    if run.on_call is not None:
        run.on_call(
            ModelCall(kind="train", model=spec.spec, dimension="sweep", stage=spec.id, ids=(spec.id,))
        )
    out = run.train_fn(model, tokenizer, data_order(run.plan.train_pairs, spec.seed), tcfg)
    model.eval()
    model.requires_grad_(False)
    return {"final_loss": getattr(out, "final_loss", None), "steps": getattr(out, "steps", None)}


def _routing_means(dims: Mapping[str, DimensionResult]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, r in dims.items():
        shift = (r.routing or {}).get("shift", {})
        js = [s["js_mean"] for s in shift.values() if s.get("js_mean") is not None]
        out[f"{name}.js"] = sum(js) / len(js) if js else None
    return out


def _execute(run: _Sweep, spec: RunSpec) -> dict[str, Any]:
    """One run: a fresh model (the seed's init stream), its training, the planned dimensions."""
    from adamoe.runs import seed_everything

    cfg = run.plan.config
    seed_everything(cfg.seed)
    model, tokenizer, info = run.load_model(spec.spec, seed=_stream_int(spec.seed, "sweep.init"))
    is_moe, field = info.get("experts_impl") is not None, "model" if spec.arm == "moe" else "dense"
    require(
        is_moe == (spec.arm == "moe"),
        f"sweep.{field}: {spec.spec!r} is {'an MoE' if is_moe else 'dense'}; expected the other kind "
        f"(--set sweep.{field}=<{'MoE' if spec.arm == 'moe' else 'dense'} model>)",
    )
    train_info = _train(run, spec, model, tokenizer)
    ev = build_evaluator(
        cfg,
        name=f"{spec.spec}[{spec.pid}, seed {spec.seed}]",
        model=model,
        tokenizer=tokenizer,
        info=info,
        cache_dir=run.run_dir / "cache" / model_slug(spec.spec) / spec.pid,
        on_call=run.on_call,
    )
    dims = evaluate_model(ev, run.plan, log=run.log)
    return json_safe(
        {
            **dataclasses.asdict(spec),
            "id": spec.id,
            "train": train_info,
            "metrics": {f"{d}.{k}": v for d, r in dims.items() for k, v in r.metrics.items()},
            "items": {f"{d}.{k}": v for d, r in dims.items() for k, v in r.items.items()},
            "routing": _routing_means(dims) if ev.is_moe else {},
        }
    )


def _saved(path: Path, spec: RunSpec) -> dict[str, Any] | None:
    """A finished run read back when it was made with the same model, seed and knobs."""
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    same = (saved.get("spec"), saved.get("seed"), saved.get("knobs"))
    return saved if same == (spec.spec, spec.seed, json_safe(spec.knobs)) else None


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
    """Every run (skipping runs already saved in `run_dir/sweep/`); returns runs and the summary table."""
    if train_fn is None:
        from adamoe.train import train as train_fn
    if load_model is None:
        from adamoe.rbench.models import load_model
    if plan.config.threads is not None:
        torch.set_num_threads(plan.config.threads)
    run_dir = Path(run_dir)
    ctx = _Sweep(
        sweep=sweep,
        plan=plan,
        run_dir=run_dir,
        train_fn=train_fn,
        load_model=load_model,
        on_call=on_call,
        log=log,
    )
    recipes, specs = plan_runs(sweep, seed=plan.config.seed)
    runs = []
    for spec in specs:
        path = run_dir / "sweep" / f"{spec.id}.json"
        record = _saved(path, spec)
        if record is None:
            record = _execute(ctx, spec)
            atomic_save_json(path, record)
            if log is not None:
                log(f"sweep {spec.id} ({spec.spec}) done")
        runs.append(record)
    rows = [dataclasses.asdict(r) | {"dense_na": r.dense_na} for r in recipes]
    return {
        "model": sweep.model,
        "dense": sweep.dense,
        "mode": sweep.mode,
        "grid": sweep.grid,
        "dims": list(sweep.dims),
        "seeds": sorted({s.seed for s in specs}),
        "train_items": len(plan.train_pairs),
        "recipes": json_safe(rows),
        "runs": runs,
        "summary": summarise(rows, runs, seed=plan.config.seed),
    }
