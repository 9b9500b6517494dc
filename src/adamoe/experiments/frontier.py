"""The quality-compute frontier (issue 17, item 4): does AdaMoE beat top-k at equal whole-model FLOPs?

Points: every trained arm (top-k at several k, the AdaMoE arms), the random-null control, and
references (the dense model, the untuned MoE). Each point has four quality measures against
whole-model forward FLOPs per token (:func:`adamoe.eval.flops.forward_flops` at the measured Load):

- ``nll``: held-out per-token NLL (nats; lower is better) on text no arm was trained or calibrated on
  (:func:`adamoe.experiments.moe_model.heldout_texts`), pooled as sum of NLL / sum of tokens;
- ``gold_logprob``: mean log-probability of the gold answer among the choices, on the test items;
- ``acc`` and ``acc_norm``: lm-eval's accuracy and length-normalised accuracy, on the test items.

Test-item measures pool the tasks with the per-item weights of :func:`adamoe.experiments.tables.pooled`,
so each is the mean of the task means.

The top-k frontier is the piecewise-linear curve through the top-k arms' (mean FLOPs, mean measure)
points, sorted by FLOPs. It is not an upper hull: a top-k arm that does worse than a cheaper one stays
on it. An arm's **gap** is its measure minus the frontier's at its own FLOPs, in the measure's units.
For ``nll`` a negative gap is better; for the others a positive one. The 95% interval is a bootstrap
over seeds x items: every draw resamples the seeds (the same seeds for every arm, since arm i and arm j
of seed s share data order and init stream) and the items or held-out texts (the same ones for every
arm), then recomputes every point, the frontier and the gap. A draw whose FLOPs fall outside the
frontier's range has no gap; the share of draws inside is reported. A gap is reported whatever it shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adamoe.eval.significance import t_interval
from adamoe.experiments.tables import Runs, pooled

__all__ = [
    "METRICS",
    "ArmData",
    "arm_data",
    "frontier_gaps",
    "frontier_rows",
    "interp_frontier",
    "plot_frontier",
]

METRICS: dict[str, str] = {
    "nll": "held-out NLL per token (nats, lower is better)",
    "gold_logprob": "gold log-prob among the choices",
    "acc": "accuracy",
    "acc_norm": "accuracy (length-normalised)",
}
_FIELDS = {"acc": "credit", "acc_norm": "credit_norm", "gold_logprob": "gold_logprob"}


@dataclass(frozen=True)
class ArmData:
    """One point's per-seed data. flops (S,); items[metric] (S, I) pooled; nll_sum, tokens (S, J) or None."""

    flops: np.ndarray
    items: dict[str, np.ndarray]
    nll_sum: np.ndarray | None = None
    tokens: np.ndarray | None = None


def arm_data(
    runs: Runs, variant: str, heldout: Sequence[Mapping[str, Sequence[float]]] | None = None
) -> ArmData:
    """The frontier data of ``variant`` from its saved runs (and per-seed held-out ``{"nll", "tokens"}``
    sums per text). FLOPs of a seed = the mean over tasks of whole-model FLOPs per token."""
    flops = []
    for seed_runs in runs[variant]:
        values = [r.model_flops_per_token for r in seed_runs.values()]
        if any(v is None for v in values):
            raise ValueError(f"runs: {variant} has no whole-model FLOPs per token (a run saved before them)")
        flops.append(float(np.mean(values)))
    items = {m: pooled(runs, variant, metric=f) for m, f in _FIELDS.items()}
    if not heldout:
        return ArmData(flops=np.array(flops), items=items)
    nll = np.array([h["nll"] for h in heldout], dtype=np.float64)
    tokens = np.array([h["tokens"] for h in heldout], dtype=np.float64)
    return ArmData(flops=np.array(flops), items=items, nll_sum=nll, tokens=tokens)


def interp_frontier(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """The piecewise-linear frontier through (xs, ys) (sorted by x) at ``x``; NaN outside its range."""
    order = np.argsort(xs)
    fx, fy = np.asarray(xs, dtype=np.float64)[order], np.asarray(ys, dtype=np.float64)[order]
    if len(fx) == 0 or x < fx[0] - 1e-9 * abs(fx[0]) or x > fx[-1] + 1e-9 * abs(fx[-1]):
        return float("nan")
    return float(np.interp(x, fx, fy))


def _counts(idx: np.ndarray, size: int) -> np.ndarray:
    """(B, n) resampled indices -> (B, size) how often each unit was drawn."""
    out = np.zeros((idx.shape[0], size))
    np.add.at(out, (np.arange(idx.shape[0])[:, None], idx), 1.0)
    return out


def _measures(d: ArmData, cs: np.ndarray, ci: np.ndarray, cj: np.ndarray | None) -> dict[str, np.ndarray]:
    """Every measure of one arm under weights cs (B, S) over seeds, ci (B, I) items, cj (B, J) texts."""
    s, i = d.flops.size, next(iter(d.items.values())).shape[1]
    out = {"flops": cs @ d.flops / s}
    for m, x in d.items.items():
        out[m] = np.einsum("bs,si,bi->b", cs, x, ci) / (s * i)
    if d.nll_sum is not None and cj is not None:
        out["nll"] = np.einsum("bs,sj,bj->b", cs, d.nll_sum, cj) / np.einsum("bs,sj,bj->b", cs, d.tokens, cj)
    return out


def _gap(
    points: Mapping[str, Mapping[str, np.ndarray]], arm: str, frontier: Sequence[str], metric: str
) -> np.ndarray:
    xs = np.stack([points[f]["flops"] for f in frontier], axis=1)
    ys = np.stack([points[f][metric] for f in frontier], axis=1)
    at = [interp_frontier(x, y, f) for x, y, f in zip(xs, ys, points[arm]["flops"])]
    return points[arm][metric] - np.asarray(at)


def frontier_gaps(
    data: Mapping[str, ArmData],
    *,
    arms: Sequence[str],
    frontier: Sequence[str],
    rng: np.random.Generator,
    n_boot: int = 2000,
    level: float = 0.95,
) -> list[dict[str, Any]]:
    """Gap of each of ``arms`` to the ``frontier`` (top-k arms) per measure, with its bootstrap interval.

    Rows: arm, metric, value, low, high, inside (share of draws within the frontier's FLOPs range),
    per_seed (the gap of each seed's own arm and frontier points) and seed_ci (the 95% t interval of
    their mean: the unit is the training run, items and texts held fixed).
    """
    first = data[frontier[0]]
    n_seeds, n_items = first.flops.size, next(iter(first.items.values())).shape[1]
    n_texts = first.nll_sum.shape[1] if first.nll_sum is not None else 0
    ones = (np.ones((1, n_seeds)), np.ones((1, n_items)), np.ones((1, n_texts)) if n_texts else None)
    draws = (
        _counts(rng.integers(0, n_seeds, (n_boot, n_seeds)), n_seeds),
        _counts(rng.integers(0, n_items, (n_boot, n_items)), n_items),
        _counts(rng.integers(0, n_texts, (n_boot, n_texts)), n_texts) if n_texts else None,
    )
    names = [*frontier, *arms]
    point = {v: _measures(data[v], *ones) for v in names}
    boot = {v: _measures(data[v], *draws) for v in names}
    one_seed = (  # draw s = seed s alone (weight S on it), every item and text once
        n_seeds * np.eye(n_seeds),
        np.ones((n_seeds, n_items)),
        np.ones((n_seeds, n_texts)) if n_texts else None,
    )
    by_seed = {v: _measures(data[v], *one_seed) for v in names}
    rows = []
    for arm in arms:
        for metric in (m for m in METRICS if m in point[arm] and all(m in point[f] for f in frontier)):
            value = float(_gap(point, arm, frontier, metric)[0])
            gaps = _gap(boot, arm, frontier, metric)
            inside = gaps[~np.isnan(gaps)]
            low, high = (
                np.quantile(inside, [(1 - level) / 2, (1 + level) / 2]) if inside.size else (np.nan,) * 2
            )
            per_seed = [float(g) for g in _gap(by_seed, arm, frontier, metric)]
            rows.append(
                {
                    "arm": arm,
                    "metric": metric,
                    "value": value,
                    "low": float(low),
                    "high": float(high),
                    "inside": inside.size / n_boot,
                    "flops": float(point[arm]["flops"][0]),
                    "per_seed": per_seed,
                    "seed_ci": list(t_interval(per_seed)),
                }
            )
    return rows


def frontier_rows(
    data: Mapping[str, ArmData], *, baseline: str, weights: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per point: FLOPs per token (and % of ``baseline``'s) and the mean of every measure;
    with ``weights`` (point -> how an MoE arm weights its picks) also its ``weights`` (None if absent)."""
    ones = {
        v: (np.ones((1, d.flops.size)), np.ones((1, next(iter(d.items.values())).shape[1])))
        for v, d in data.items()
    }
    rows = []
    base = float(data[baseline].flops.mean())
    for v, d in data.items():
        cj = np.ones((1, d.nll_sum.shape[1])) if d.nll_sum is not None else None
        m = {k: float(x[0]) for k, x in _measures(d, *ones[v], cj).items()}
        shown = {} if weights is None else {"weights": weights.get(v)}
        rows.append({"point": v, **shown, **m, "flops_pct": 100.0 * m["flops"] / base})
    return sorted(rows, key=lambda r: r["flops"])


def plot_frontier(
    rows: Sequence[Mapping[str, Any]], path: Path, *, frontier: Sequence[str], dial: Sequence[Mapping] = ()
) -> Path:
    """Four panels (one per measure) against MFLOPs per token; the top-k frontier as a line, every
    other point as a labelled marker; dial points (a subset of test items) on the accuracy panel."""
    from adamoe.eval.plots import new_figure, save_png

    fig, _ = new_figure((10.0, 7.0))
    fig.clear()
    axes = fig.subplots(2, 2)
    for ax, metric in zip(np.ravel(axes), METRICS):
        line = sorted((r for r in rows if r["point"] in frontier and metric in r), key=lambda r: r["flops"])
        ax.plot([r["flops"] / 1e6 for r in line], [r[metric] for r in line], "o-", color="k", label="top-k")
        for r in rows:
            if r["point"] not in frontier and metric in r:
                ax.plot(r["flops"] / 1e6, r[metric], "s", label=r["point"])
        if metric == "acc" and dial:
            pts = [p for p in dial if p.get("model_flops_per_token")]
            ax.plot(
                [p["model_flops_per_token"] / 1e6 for p in pts],
                [p["acc"] for p in pts],
                "x",
                label="dial (subset)",
            )
        ax.set_xlabel("whole-model MFLOPs per token")
        ax.set_ylabel(METRICS[metric], fontsize=7)
        ax.grid(alpha=0.3)
    np.ravel(axes)[0].legend(fontsize=6)
    return save_png(fig, path)


def _interval_text(ci: Sequence[float]) -> str:
    return "–" if any(np.isnan(c) for c in ci) else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def _gaps_table(gaps: Sequence[Mapping[str, Any]], frontier: Sequence[str]) -> Any:
    """The gaps table: pooled gap with its seeds x items bootstrap interval, and the per-seed gaps."""
    from adamoe.eval.report import Table

    body = [
        [
            g["arm"],
            g["metric"],
            f"{g['flops'] / 1e6:.1f}",
            f"{g['value']:+.4f} [{g['low']:+.4f}, {g['high']:+.4f}]",
            f"{g['inside']:.2f}",
            " ".join(f"{v:+.4f}" for v in g["per_seed"]),
            _interval_text(g["seed_ci"]),
        ]
        for g in gaps
    ]
    caption = (
        f"Gap to the top-k frontier ({', '.join(frontier)}) at equal FLOPs, 95% CI over seeds x items "
        "(nll: negative = better; others: positive = better; 'inside' = share of bootstrap draws "
        "within the frontier's FLOPs range); per seed: each seed's own points, with the 95% t interval "
        "over seeds (unit = training run)"
    )
    head = ["arm", "measure", "MFLOPs/token", "gap [95% CI]", "inside", "per seed", "95% CI (t, seeds)"]
    return Table.plain(head, body, caption=caption)


def frontier_report(
    run_dir: Path,
    data: Mapping[str, ArmData],
    *,
    frontier: Sequence[str],
    tested: Sequence[str],
    baseline: str,
    rng: np.random.Generator,
    n_boot: int,
    dial: Sequence[Mapping] = (),
    weights: Mapping[str, str] | None = None,
) -> tuple[list[Any], list[tuple[str, Path]], dict[str, Any]]:
    """(report blocks, plots, metrics) of the frontier: the points table, the gaps table, the plot.
    ``weights``: each point's weighting (MoE arms), a column of the points table and a row field."""
    from adamoe.eval.report import Table

    rows = frontier_rows(data, baseline=baseline, weights=weights)
    shown = [] if weights is None else ["weights"]  # None (dense: no routing) shows as a dash
    gaps = frontier_gaps(data, arms=tested, frontier=frontier, rng=rng, n_boot=n_boot) if tested else []
    measures = [m for m in METRICS if all(m in r for r in rows)]
    cells = [
        [
            r["point"],
            *(r[c] or "–" for c in shown),
            f"{r['flops'] / 1e6:.1f}",
            f"{r['flops_pct']:.2f}",
            *(f"{r[m]:.4f}" for m in measures),
        ]
        for r in rows
    ]
    blocks: list[Any] = [
        Table.plain(
            ["point", *shown, "MFLOPs/token", f"% of {baseline}", *measures],
            cells,
            caption="Quality vs whole-model FLOPs per token (means over seeds; test items, held-out text)",
        )
    ]
    if gaps:
        blocks.append(_gaps_table(gaps, frontier))
    path = plot_frontier(rows, run_dir / "frontier.png", frontier=frontier, dial=dial)
    plots = [("Quality-compute frontier: top-k (line) vs AdaMoE arms, control and references", path)]
    return blocks, plots, {"frontier": rows, "frontier_gaps": gaps}
