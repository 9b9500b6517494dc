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
    "gold_logprob",
    "layer_group",
    "layer_loads",
    "paired_rows",
    "pooled",
    "stats_rng",
    "task_weights",
]

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass(frozen=True, kw_only=True)
class TaskRun:
    """One variant, one seed, one task: per-item credit and the routing sums per routing source.

    ``layers[name]`` = ``{"tokens": T, "true_slots": S, "sharpness": [4 token shares]}`` (empty for a
    dense model); ``model_flops_pct`` is the whole-model FLOPs vs the baseline's, when defined, and
    ``model_flops_per_token`` the whole-model forward FLOPs per token behind it (the frontier's x axis).
    Per item: ``credit_norm`` is the credit of the length-normalised pick (lm-eval's acc_norm) and
    ``gold_logprob`` the log-probability of the gold answer among the choices (log-softmax of the
    choices' log-likelihoods at the golds), a finer measure than 0/1 credit (issue 17).
    """

    task: str
    ids: tuple[str, ...]
    credit: tuple[float, ...]
    num_choices: tuple[int, ...]
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_flops_pct: float | None = None
    model_flops_per_token: float | None = None
    credit_norm: tuple[float, ...] | None = None
    gold_logprob: tuple[float, ...] | None = None

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
            model_flops_per_token=data.get("model_flops_per_token"),
            credit_norm=_floats(data.get("credit_norm")),
            gold_logprob=_floats(data.get("gold_logprob")),
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
            model_flops_per_token=routing.get("model_flops_per_token"),
            credit_norm=tuple(float(e.credit(r.pred_norm)) for e, r in zip(examples, records)),
            gold_logprob=tuple(gold_logprob(r.loglikelihoods, e.golds) for e, r in zip(examples, records)),
        )


def _floats(values: Sequence[Any] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def gold_logprob(loglikelihoods: Sequence[float], golds: Sequence[int]) -> float:
    """log P(gold | choices): log of the golds' share of the choices' likelihood (several golds: summed)."""
    ll = np.asarray(loglikelihoods, dtype=np.float64)
    top = ll.max()
    return float(np.log(np.exp(ll[list(golds)] - top).sum()) - np.log(np.exp(ll - top).sum()))


Runs = dict[str, list[dict[str, TaskRun]]]
"""variant -> one {task: TaskRun} per seed."""


def stats_rng(stats_seed: int, *names: str) -> np.random.Generator:
    """The bootstrap/permutation stream of one table cell (independent across cells)."""
    return np.random.default_rng(derive_seed(stats_seed, "table:" + "/".join(names)))


def _tasks(runs: Runs) -> list[str]:
    first = next(iter(runs.values()))
    return list(first[0])


def acc_matrix(runs: Runs, variant: str, task: str, *, metric: str = "credit") -> np.ndarray:
    """(seeds, items) per-item ``metric`` (a :class:`TaskRun` per-item field: ``credit``,
    ``credit_norm``, ``gold_logprob``) of one variant on one task; items must match across seeds."""
    per_seed = [seed_runs[task] for seed_runs in runs[variant]]
    ids = per_seed[0].ids
    for r in per_seed[1:]:
        if r.ids != ids:
            raise ValueError(f"runs: {variant} scored different items of {task!r} in different seeds")
    values = [getattr(r, metric) for r in per_seed]
    if any(v is None for v in values):
        raise ValueError(
            f"runs: {variant} on {task!r} has no per-item {metric!r} (a run saved before it existed)"
        )
    return np.array(values, dtype=np.float64)


def task_weights(runs: Runs, variant: str) -> dict[str, float]:
    """Per-item weight N / (T · n_task) of each task, so the pooled item mean is the mean of task means."""
    sizes = {t: len(runs[variant][0][t].ids) for t in _tasks(runs)}
    total = sum(sizes.values())
    return {t: total / (len(sizes) * n) for t, n in sizes.items()}


def pooled(runs: Runs, variant: str, *, metric: str = "credit") -> np.ndarray:
    """(seeds, all items) weighted per-item ``metric`` over the tasks (see :func:`task_weights`), so its
    mean is the mean of the task means."""
    weights = task_weights(runs, variant)
    return np.concatenate(
        [acc_matrix(runs, variant, t, metric=metric) * w for t, w in weights.items()], axis=1
    )


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
    runs: Runs,
    *,
    baseline_k: int | None,
    stats_seed: int = 0,
    n_boot: int = 2000,
    weights: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Paper-table rows: per (variant, task) and an "average" row per variant (see module docstring).
    ``weights`` (variant -> how an MoE arm weights its picks) adds a ``weights`` field (None if absent)."""
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
        pooled_credit = pooled(runs, variant)
        rng = stats_rng(stats_seed, "acc", variant, "average")
        est = bootstrap_ci(pooled_credit, rng=rng, chance=chance, n_boot=n_boot)
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
    return rows if weights is None else [{**r, "weights": weights.get(r["model"])} for r in rows]


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
            pairs.append(("average", pooled(runs, variant), pooled(runs, baseline)))
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
