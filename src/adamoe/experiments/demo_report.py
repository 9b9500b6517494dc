"""The report of ``adamoe demo``: the experiments' tables and plots, plus the findings said in words.

The tables (accuracy with n, 95% CI and chance; paired AdaMoE - top-2 tests; Load per layer) come from
:func:`adamoe.experiments.harness.write_experiment_report` over the per-item records of every seed, so
the demo and ``adamoe reproduce moe`` compute every number the same way. With one seed (the default)
and 0/1 credit the paired test is the exact McNemar test on the discordant items, conditional on that
one trained pair of models; the dense model is a reference row, never tested. What the demo adds: one
sentence per task and on the average saying whether the AdaMoE - top-2 difference is significant ("no
significant difference" when p >= 0.05), printed too. This module imports only the shared helpers
(harness, dial, tables), never :mod:`adamoe.experiments.demo`, which calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["finding", "write_demo_report"]


def finding(row: Mapping[str, Any], *, baseline: str) -> str:
    """One plain sentence for a paired-test row (``model, task, n, diff{value,low,high}, p, test``)."""
    d = row["diff"]
    stats = (
        f"{row['model']} - {baseline} on {row['task']} (n={row['n']}): "
        f"{100 * d['value']:+.1f} points [95% CI {100 * d['low']:+.1f}, {100 * d['high']:+.1f}], "
        f"{row['test']} p = {row['p']:.3f}"
    )
    if row["p"] >= 0.05:
        return stats + ": no significant difference at the 5% level."
    better = "better" if d["value"] > 0 else "worse"
    return stats + f": {row['model']} is significantly {better} (p < 0.05, before Holm)."


def write_demo_report(
    run_dir: Path,
    cfg: Any,
    *,
    names: tuple[str, str],
    seeds: list[int],
    runs: Mapping[str, list[Mapping[str, Any]]],
    trained: Mapping[str, list[Mapping[str, Any]]],
    dial: Mapping[str, Any],
    timings: Mapping[str, float],
    command: str | None = None,
) -> dict[str, Any]:
    """report.md/.html, metrics.json and plots; returns {rows, paired, loads, paths, findings, timings}.

    ``names``: (baseline, AdaMoE) table names; ``runs``: {variant: [{task: TaskRun} per seed]} for
    dense, top-k and AdaMoE (saved under ``records`` in metrics.json, so every table number can be
    recomputed from the file); ``trained``: the harness's training summaries per fine-tuned variant and
    seed; ``dial``: :func:`adamoe.experiments.dial.dial_points` of the first seed.
    """
    from adamoe.experiments.dial import sharpness_and_dial_plots
    from adamoe.experiments.harness import write_experiment_report
    from adamoe.experiments.tables import paired_rows

    base, ada = names
    seed_runs = {v: list(r) for v, r in runs.items()}
    paired = paired_rows(
        seed_runs, baseline=base, exclude=["dense"], stats_seed=cfg.stats_seed, n_boot=cfg.n_boot
    )
    findings = [finding(r, baseline=base) for r in paired]
    built = "moefied (shared core + routed groups)" if cfg.moe == "moefy" else "upcycled (copied experts)"
    out = write_experiment_report(
        run_dir,
        title=f"adamoe demo: dense vs {base} vs AdaMoE on the {built} {cfg.model} MoE",
        runs=seed_runs,
        cfg=cfg,
        baseline=base,
        baseline_k=cfg.baseline_k,
        references=["dense"],
        notes=["Findings:", *findings, "", *_notes(cfg, seeds, runs, trained, dial, timings)],
        command=command,
        plots=sharpness_and_dial_plots(run_dir, seed_runs, [dict(dial)], [base, ada]),
        metrics={
            "config": cfg.to_dict(),
            "findings": findings,
            "timings_s": dict(timings),
            "train": dict(trained),
            "dial": dial,
            "seeds": seeds,
            "records": {
                v: [{t: r.to_dict() for t, r in tasks.items()} for tasks in per_seed]
                for v, per_seed in runs.items()
            },
        },
    )
    return {**out, "findings": findings, "timings": dict(timings)}


def _notes(
    cfg: Any,
    seeds: list[int],
    runs: Mapping[str, list[Mapping[str, Any]]],
    trained: Mapping[str, list[Mapping[str, Any]]],
    dial: Mapping[str, Any],
    timings: Mapping[str, float],
) -> list[str]:
    sizes = ", ".join(f"{t} {len(r.ids)}" for t, r in runs["dense"][0].items())
    losses = "; ".join(
        f"{v} " + ", ".join(f"{s['final_loss']:.4f} ({s['steps']} steps)" for s in per_seed)
        for v, per_seed in trained.items()
    )
    curve = "; ".join(
        f"bias {p['bias']:+.3f}: load {p['load']:.2f}, acc {100 * p['acc']:.1f}" for p in dial["curve"]
    )
    searches = "; ".join(f"target {s['target_load']} -> bias {s['bias']:+.3f}" for s in dial["searches"])
    return [
        f"Tasks: {', '.join(cfg.tasks)}; fine-tuned on their train parts, the dial's bias searched on "
        "validation, every table on test (disjoint hash parts).",
        f"Test items per task: {sizes}; seeds {seeds} (CIs bootstrap over seeds x items).",
        f"Training: {cfg.train_per_task} items per task (union, multi-task), {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, lr {cfg.lr}; trainable {cfg.trainable} in the last "
        f"{cfg.train_last_layers} layers; same data order for both variants.",
        f"Aux loss: top-{cfg.baseline_k} Switch at {cfg.aux_coef}; AdaMoE null-aware, {cfg.aux_coef} in "
        f"epoch 1 then {cfg.aux_coef_end} (annealing {'on' if cfg.anneal else 'off'}).",
        f"AdaMoE: m={cfg.null_experts} null experts, k={cfg.top_k}, gate2 init {cfg.gate2_init}.",
        f"Final train loss: {losses}.",
        f"FLOPs: expert FLOPs vs top-{cfg.baseline_k} (= 100 * load / {cfg.baseline_k}) and whole-model "
        "FLOPs per token vs the same model at top-k (attention, shared expert, LM head, router included).",
        f"Compute dial ({cfg.dial_per_task} test items per task): {searches}. Curve: {curve}.",
        "Timings (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()),
    ]
