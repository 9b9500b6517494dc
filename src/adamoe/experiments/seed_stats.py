"""Statistics over training runs: per-seed accuracies and seed-level paired tests (issue 17, item 5).

Why: the item-level tests of :func:`adamoe.experiments.tables.paired_rows` resample items of fixed
trained models. Their p-values are conditional on those models and ignore run-to-run variance. With
an 8-point run-to-run SD, 3 seeds and 300 items they reject a true null in about half of the
datasets. The question "does AdaMoE beat top-k *as a training recipe*?" has the seed as its unit. So:

- the per-seed accuracy of every (variant, task) is printed, with the average over tasks;
- the seed-level test pairs the seeds of a variant and of the baseline (same seed = same data order
  and init stream), takes the per-seed difference of accuracy d_s and runs the exact two-sided
  sign-flip test of mean(d) = 0 over all 2^S sign patterns. With S seeds the smallest possible p is
  2^(1-S): 0.25 with 3 seeds and 0.031 with 6. That is why the headline comparisons need >= 6 seeds.
  The t statistic mean(d) / (sd(d) / sqrt(S)) is shown beside it, with the 95% t interval of the
  mean over seeds, mean(d) +- t_{S-1, 0.975} sd(d) / sqrt(S) (normal run-to-run differences assumed;
  what a reader can act on when S is too small for the sign-flip floor to reach 0.05);
- Holm runs over the family actually tested: every seed-level test of the table (all variants x
  (tasks + average)), and the caption states that count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adamoe.eval.significance import holm, t_interval
from adamoe.experiments.tables import Runs, acc_matrix, pooled

__all__ = ["seed_accuracies", "seed_paired_rows", "seed_tables", "sign_flip_exact"]

MAX_EXACT_SEEDS = 20
"""2^20 sign patterns: the exact enumeration stays below a second and 8 MB."""


def seed_accuracies(runs: Runs, variant: str, task: str) -> list[float]:
    """Accuracy of each seed of ``variant`` on ``task`` (``"average"``: the mean of task means)."""
    x = pooled(runs, variant) if task == "average" else acc_matrix(runs, variant, task)
    return [float(v) for v in x.mean(axis=1)]


def sign_flip_exact(d: Sequence[float]) -> float:
    """Two-sided exact sign-flip p-value of mean(d) = 0 for paired per-seed differences ``d`` (S,).

    Under the null each seed's difference is equally likely to have either sign; p is the share of the
    2^S sign patterns whose |sum| reaches the observed |sum| (ties counted, so p >= 2^(1-S)).
    """
    x = np.asarray(d, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"d: expected a non-empty 1-D list of per-seed differences, got shape {x.shape}")
    if x.size > MAX_EXACT_SEEDS:
        raise ValueError(f"d: exact sign-flip enumerates 2^S patterns; expected <= {MAX_EXACT_SEEDS} seeds")
    signs = ((np.arange(2**x.size)[:, None] >> np.arange(x.size)) & 1) * 2.0 - 1.0
    observed = abs(x.sum())
    tol = 1e-12 * max(float(np.abs(x).sum()), 1e-300)
    return float((np.abs(signs @ x) >= observed - tol).mean())


def seed_paired_rows(runs: Runs, *, baseline: str, exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Seed-level tests of every other variant (but ``exclude``) against ``baseline``, per task and on
    the average; Holm over all of them (one family). Keys: model, task, seeds, per_seed (d_s),
    diff, sd, t, ci (95% t interval over seeds), p, p_holm, significant, min_p, family, test."""
    if baseline not in runs:
        raise ValueError(f"baseline: expected one of {', '.join(runs)}, got {baseline!r}")
    tasks = list(next(iter(runs.values()))[0])
    cells = [*tasks, "average"] if len(tasks) > 1 else tasks
    rows: list[dict[str, Any]] = []
    for variant in (v for v in runs if v != baseline and v not in exclude):
        for task in cells:
            a, b = seed_accuracies(runs, variant, task), seed_accuracies(runs, baseline, task)
            d = np.subtract(a, b)
            sd = float(d.std(ddof=1)) if d.size > 1 else float("nan")
            t = float(d.mean() / (sd / math.sqrt(d.size))) if d.size > 1 and sd > 0 else float("nan")
            rows.append(
                {
                    "model": variant,
                    "task": task,
                    "seeds": int(d.size),
                    "per_seed": [float(v) for v in d],
                    "diff": float(d.mean()),
                    "sd": sd,
                    "t": t,
                    "ci": list(t_interval(d)),
                    "p": sign_flip_exact(d),
                    "min_p": 2.0 ** (1 - d.size),
                    "test": "sign-flip over seeds (exact)",
                }
            )
    for row, p in zip(rows, holm([r["p"] for r in rows]) if rows else []):
        row.update(p_holm=p, significant=p < 0.05, family=len(rows))
    return rows


def _ci_text(ci: Sequence[float]) -> str:
    return "–" if any(math.isnan(c) for c in ci) else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def seed_tables(
    runs: Runs, seed_rows: Sequence[Mapping[str, Any]], *, seeds: Sequence[int] | None = None
) -> list[Any]:
    """[per-seed accuracy table, seed-level test table] as :mod:`adamoe.eval.report` tables."""
    from adamoe.eval.report import Table

    n_seeds = len(next(iter(runs.values())))
    names = [str(s) for s in seeds] if seeds is not None else [str(i) for i in range(n_seeds)]
    tasks = list(next(iter(runs.values()))[0])
    cells = [*tasks, "average"] if len(tasks) > 1 else tasks
    acc = [[v, t, *(f"{100 * a:.1f}" for a in seed_accuracies(runs, v, t))] for v in runs for t in cells]
    blocks: list[Any] = [
        Table.plain(["model", "task", *(f"seed {s}" for s in names)], acc, caption="Accuracy per seed (%)")
    ]
    if seed_rows:
        body = [
            [
                r["model"],
                r["task"],
                " ".join(f"{100 * d:+.1f}" for d in r["per_seed"]),
                f"{100 * r['diff']:+.1f}",
                _ci_text(r["ci"]),
                "–" if math.isnan(r["t"]) else f"{r['t']:+.2f}",
                f"{r['p']:.3f}",
                f"{r['p_holm']:.3f}",
                "yes" if r["significant"] else "no",
            ]
            for r in seed_rows
        ]
        head = [
            "model",
            "task",
            "Δ per seed",
            "mean Δ",
            "95% CI (t, seeds)",
            "t",
            "p",
            "p (Holm)",
            "significant",
        ]
        caption = (
            f"Seed-level paired tests vs the baseline (unit = training run; exact sign-flip over "
            f"{n_seeds} seeds, smallest possible p {2.0 ** (1 - n_seeds):.3f}); Holm over the "
            f"{len(seed_rows)} tests of this table"
        )
        blocks.append(Table.plain(head, body, caption=caption))
    return blocks
