"""The paper-style tables of the reproductions, computed from per-item records and nothing else.

Why from records: every number in the table (accuracy over seeds with its 95% interval, Load per layer,
both FLOPs figures, the paired AdaMoE-vs-baseline tests) must be recomputable by hand from what the
run saved, so a run stores one :class:`TaskRun` per (model variant, seed, task): each test item's credit
and choice count, and the routing sums per layer; the tables are pure functions of those.

Layout of a run's results: ``runs[variant][s][task] -> TaskRun`` for seeds ``s = 0..S-1``; every
variant sees the same seeds and the same test items (checked), so items and seeds pair across variants.

Conventions:
- Accuracy of a (variant, task) is the mean credit over seeds and items; its interval is the two-way
  bootstrap over (seeds, items) of :func:`adamoe.eval.significance.bootstrap_ci`.
- The "average" row is the unweighted mean over tasks (the paper's Avg.). Its interval and its paired
  test use per-item weights ``N / (T · n_task)`` (N items over T tasks), under which the plain item mean
  equals the mean of task means; items are resampled over the pooled set.
- Paired tests (:func:`adamoe.eval.significance.paired_difference`, seeds paired): per task, Holm-adjusted
  over all (variant, task) comparisons of the table; on the average, Holm-adjusted over the variants.
- Load of a task = mean over routing sources of true experts per token (the paper's Load); Load per
  layer groups sources by decoder layer (a Mo-LoRA layer has 7 routed projections) and weights tasks by
  their tokens.
- Randomness: each cell's bootstrap draws from its own stream derived from (``stats_seed``, cell name).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from adamoe.eval.significance import bootstrap_ci, chance_level, holm, paired_difference
from adamoe.utils.seeding import derive_seed

__all__ = [
    "Runs",
    "TaskRun",
    "acc_matrix",
    "accuracy_rows",
    "layer_group",
    "layer_loads",
    "paired_rows",
    "stats_rng",
    "task_weights",
]

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass(frozen=True, kw_only=True)
class TaskRun:
    """One variant, one seed, one task: per-item credit and the routing sums per routing source.

    ``layers[name]`` = ``{"tokens": T, "true_slots": S, "sharpness": [4 token shares]}`` (empty for a
    dense model); ``model_flops_pct`` is the whole-model FLOPs vs the baseline's, when defined.
    """

    task: str
    ids: tuple[str, ...]
    credit: tuple[float, ...]
    num_choices: tuple[int, ...]
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_flops_pct: float | None = None

    @property
    def load(self) -> float | None:
        """Mean over routing sources of true experts per token; None for a dense model."""
        if not self.layers:
            return None
        return float(np.mean([v["true_slots"] / max(v["tokens"], 1) for v in self.layers.values()]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRun:
        return cls(
            task=data["task"],
            ids=tuple(data["ids"]),
            credit=tuple(float(c) for c in data["credit"]),
            num_choices=tuple(int(c) for c in data["num_choices"]),
            layers=dict(data.get("layers") or {}),
            model_flops_pct=data.get("model_flops_pct"),
        )

    @classmethod
    def from_scores(
        cls, task: str, examples: Sequence[Any], records: Sequence[Any], routing: Mapping[str, Any]
    ) -> TaskRun:
        """From scored items (``MCExample``s and their ``MCRecord``s, same order) and an ``adamoe.stats``
        summary; credit is the task's own score of the predicted choice (``MCExample.credit``)."""
        if [e.id for e in examples] != [r.id for r in records]:
            raise ValueError(f"records: expected one record per example of {task!r}, in example order")
        layers = {
            name: {
                "tokens": int(s["tokens"]),
                "true_slots": float(s["load"]) * int(s["tokens"]),
                "sharpness": [float(v) for v in s["sharpness"].values()],
            }
            for name, s in (routing.get("layers") or {}).items()
        }
        return cls(
            task=task,
            ids=tuple(e.id for e in examples),
            credit=tuple(float(e.credit(r.pred)) for e, r in zip(examples, records)),
            num_choices=tuple(len(e.choices) for e in examples),
            layers=layers,
            model_flops_pct=routing.get("model_flops_pct"),
        )


Runs = dict[str, list[dict[str, TaskRun]]]
"""variant -> one {task: TaskRun} per seed."""


def stats_rng(stats_seed: int, *names: str) -> np.random.Generator:
    """The bootstrap/permutation stream of one table cell (independent across cells)."""
    return np.random.default_rng(derive_seed(stats_seed, "table:" + "/".join(names)))


def _tasks(runs: Runs) -> list[str]:
    first = next(iter(runs.values()))
    return list(first[0])


def acc_matrix(runs: Runs, variant: str, task: str) -> np.ndarray:
    """(seeds, items) credit of one variant on one task; items must be the same in every seed."""
    per_seed = [seed_runs[task] for seed_runs in runs[variant]]
    ids = per_seed[0].ids
    for r in per_seed[1:]:
        if r.ids != ids:
            raise ValueError(f"runs: {variant} scored different items of {task!r} in different seeds")
    return np.array([r.credit for r in per_seed], dtype=np.float64)


def task_weights(runs: Runs, variant: str) -> dict[str, float]:
    """Per-item weight N / (T · n_task) of each task, so the pooled item mean is the mean of task means."""
    sizes = {t: len(runs[variant][0][t].ids) for t in _tasks(runs)}
    total = sum(sizes.values())
    return {t: total / (len(sizes) * n) for t, n in sizes.items()}


def _pooled(runs: Runs, variant: str) -> np.ndarray:
    """(seeds, all items) weighted credit over the tasks (see :func:`task_weights`)."""
    weights = task_weights(runs, variant)
    return np.concatenate([acc_matrix(runs, variant, t) * w for t, w in weights.items()], axis=1)


def _mean_of(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _cell(
    runs: Runs, variant: str, task: str, *, baseline_k: int | None, rng: Any, n_boot: int
) -> dict[str, Any]:
    x = acc_matrix(runs, variant, task)
    first = runs[variant][0][task]
    chance = chance_level(list(first.num_choices))
    est = bootstrap_ci(x, rng=rng, chance=chance, n_boot=n_boot)
    load = _mean_of([s[task].load for s in runs[variant]])
    return {
        "model": variant,
        "task": task,
        "n": x.shape[1],
        "seeds": x.shape[0],
        "acc": est.value,
        "acc_ci": est.to_dict(),
        "chance": chance,
        "load": load,
        "expert_flops_pct": None if load is None or not baseline_k else 100.0 * load / baseline_k,
        "model_flops_pct": _mean_of([s[task].model_flops_pct for s in runs[variant]]),
    }


def accuracy_rows(
    runs: Runs, *, baseline_k: int | None, stats_seed: int = 0, n_boot: int = 2000
) -> list[dict[str, Any]]:
    """Paper-table rows: per (variant, task) and an "average" row per variant (see module docstring)."""
    rows: list[dict[str, Any]] = []
    tasks = _tasks(runs)
    for variant in runs:
        cells = [
            _cell(
                runs,
                variant,
                t,
                baseline_k=baseline_k,
                rng=stats_rng(stats_seed, "acc", variant, t),
                n_boot=n_boot,
            )
            for t in tasks
        ]
        rows += cells
        if len(tasks) < 2:
            continue
        chance = float(np.mean([c["chance"] for c in cells]))
        pooled = _pooled(runs, variant)
        rng = stats_rng(stats_seed, "acc", variant, "average")
        est = bootstrap_ci(pooled, rng=rng, chance=chance, n_boot=n_boot)
        est_dict = {**est.to_dict(), "n": int(sum(c["n"] for c in cells))}
        avg = {k: _mean_of([c[k] for c in cells]) for k in ("load", "expert_flops_pct", "model_flops_pct")}
        rows.append(
            {
                "model": variant,
                "task": "average",
                "n": est_dict["n"],
                "seeds": cells[0]["seeds"],
                "acc": est.value,
                "acc_ci": est_dict,
                "chance": chance,
                **avg,
            }
        )
    return rows


def paired_rows(
    runs: Runs,
    *,
    baseline: str,
    exclude: Sequence[str] = (),
    stats_seed: int = 0,
    n_boot: int = 2000,
    n_perm: int = 10000,
) -> list[dict[str, Any]]:
    """Paired tests of every other variant (but ``exclude``, e.g. references) against ``baseline``: per
    task and on the average.

    Row keys: model, task, n, diff (interval mapping), p, p_holm, significant (at 0.05 after Holm), test.
    """
    if baseline not in runs:
        raise ValueError(f"baseline: expected one of {', '.join(runs)}, got {baseline!r}")
    tasks = _tasks(runs)
    rows: list[dict[str, Any]] = []
    for variant in (v for v in runs if v != baseline and v not in exclude):
        pairs = [(t, acc_matrix(runs, variant, t), acc_matrix(runs, baseline, t)) for t in tasks]
        if len(tasks) > 1:
            pairs.append(("average", _pooled(runs, variant), _pooled(runs, baseline)))
        for task, a, b in pairs:
            rng = stats_rng(stats_seed, "paired", variant, baseline, task)
            d = paired_difference(a, b, rng=rng, n_boot=n_boot, n_perm=n_perm)
            diff = {"value": d.diff, "low": d.low, "high": d.high, "n": d.n}
            rows.append({"model": variant, "task": task, "n": d.n, "diff": diff, "p": d.p, "test": d.test})
    for family in (lambda r: r["task"] != "average", lambda r: r["task"] == "average"):
        _holm_into([r for r in rows if family(r)])
    return rows


def _holm_into(rows: list[dict[str, Any]]) -> None:
    """Add ``p_holm`` (Holm over ``rows``) and ``significant`` (p_holm < 0.05) to each row in place."""
    if not rows:
        return
    for row, p in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = p
        row["significant"] = p < 0.05


def layer_group(name: str) -> str:
    """The decoder layer of a routing source (``"7"`` for ``model.layers.7.mlp.gate``), else its name."""
    m = _LAYER.search(name)
    return m.group(1) if m else name


def layer_loads(
    runs: Runs, variant: str, *, value: Callable[[dict[str, Any]], Any] | None = None
) -> dict[str, Any]:
    """Per decoder layer, mean over seeds of the per-layer statistic over all tasks' tokens.

    Default statistic: Load (true slots / tokens, summed over tasks, averaged over the layer's sources).
    ``value(sums)`` may compute another from ``{"tokens", "true_slots", "sharpness"}`` sums of a layer
    (``sharpness`` then holds token counts per bin).
    """
    value = value or (lambda s: s["true_slots"] / max(s["tokens"], 1))
    per_seed: list[dict[str, Any]] = []
    for seed_runs in runs[variant]:
        sums: dict[str, dict[str, Any]] = {}
        for run in seed_runs.values():
            for name, s in run.layers.items():
                acc = sums.setdefault(name, {"tokens": 0, "true_slots": 0.0, "sharpness": np.zeros(4)})
                acc["tokens"] += s["tokens"]
                acc["true_slots"] += s["true_slots"]
                acc["sharpness"] = acc["sharpness"] + np.asarray(s["sharpness"]) * s["tokens"]
        groups: dict[str, list[Any]] = {}
        for name, s in sums.items():
            groups.setdefault(layer_group(name), []).append(value(s))
        per_seed.append({g: np.mean(np.asarray(v, dtype=np.float64), axis=0) for g, v in groups.items()})
    if not per_seed or not per_seed[0]:
        return {}
    return {g: np.mean([p[g] for p in per_seed], axis=0).tolist() for g in per_seed[0]}


# ---------------------------------------------------------------- rendering

PAIRED_COLUMNS = (
    ("model", "model", None, 1.0),
    ("task", "task", None, 1.0),
    ("n", "n", None, 1.0),
    ("diff", "Δ acc vs baseline [95% CI]", 1, 100.0),
    ("p", "p", 3, 1.0),
    ("p_holm", "p (Holm)", 3, 1.0),
    ("significant", "significant", None, 1.0),
    ("test", "test", None, 1.0),
)


def report_tables(
    rows: Sequence[Mapping[str, Any]], paired: Sequence[Mapping[str, Any]], loads: Mapping[str, Mapping]
) -> list[Any]:
    """[paper table, paired tests, Load per layer] as :mod:`adamoe.eval.report` tables."""
    from adamoe.eval.report import Column, Table, paper_table

    blocks: list[Any] = [paper_table(rows, caption="Accuracy: mean over seeds [95% CI over seeds x items]")]
    if paired:
        cols = tuple(Column(key=k, label=lab, digits=d, scale=sc) for k, lab, d, sc in PAIRED_COLUMNS)
        shown = [{**r, "significant": "yes" if r.get("significant") else "no"} for r in paired]
        caption = "Paired tests vs the baseline (seeds paired; Holm over tasks, and over the averages)"
        blocks.append(Table(columns=cols, rows=tuple(shown), caption=caption))
    variants = [v for v in loads if loads[v]]
    if variants:
        layers = sorted(
            {g for v in variants for g in loads[v]},
            key=lambda g: (not g.isdigit(), int(g) if g.isdigit() else 0, g),
        )
        cells = [[g, *(_fmt(loads[v].get(g)) for v in variants)] for g in layers]
        blocks.append(
            Table.plain(["layer", *variants], cells, caption="Load per layer (true experts per token)")
        )
    return blocks


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"


def plot_accuracy(rows: Sequence[Mapping[str, Any]], path: Any) -> Any:
    """Grouped bars: accuracy per task and variant with the 95% interval as error bars; chance dashed."""
    from adamoe.eval.plots import new_figure, save_png

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    variants = list(dict.fromkeys(r["model"] for r in rows))
    fig, ax = new_figure((max(6.0, 1.1 * len(tasks) + 2), 3.6))
    width = 0.8 / max(len(variants), 1)
    by = {(r["model"], r["task"]): r for r in rows}
    for i, v in enumerate(variants):
        cells = [by.get((v, t)) for t in tasks]
        acc = [100 * c["acc"] if c else np.nan for c in cells]
        err = [
            [100 * (c["acc"] - c["acc_ci"]["low"]) if c else 0 for c in cells],
            [100 * (c["acc_ci"]["high"] - c["acc"]) if c else 0 for c in cells],
        ]
        ax.bar(np.arange(len(tasks)) + i * width, acc, width, yerr=err, capsize=2, label=v)
    chance = [100 * by[(variants[0], t)]["chance"] for t in tasks]
    ax.hlines(
        chance,
        np.arange(len(tasks)) - width / 2,
        np.arange(len(tasks)) + 0.8 - width / 2,
        colors="k",
        linestyles="dashed",
        label="chance",
    )
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks)
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7, ncol=min(len(variants) + 1, 7))
    return save_png(fig, path)


def plot_acc_vs_load(rows: Sequence[Mapping[str, Any]], path: Any) -> Any:
    """Average accuracy (95% interval) against Load, one point per routed variant (paper Fig. 5 style)."""
    from adamoe.eval.plots import new_figure, save_png

    avg = [r for r in rows if r["task"] == "average" and r.get("load") is not None]
    fig, ax = new_figure((5.0, 3.4))
    for r in avg:
        err = [[100 * (r["acc"] - r["acc_ci"]["low"])], [100 * (r["acc_ci"]["high"] - r["acc"])]]
        ax.errorbar([r["load"]], [100 * r["acc"]], yerr=err, marker="o", capsize=3, label=r["model"])
    ax.set_xlabel("Load (true experts per token)")
    ax.set_ylabel("average accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_png(fig, path)
