"""The compute dial and the routing plots that the demo and ``adamoe reproduce moe`` both draw.

Why a module of its own: both experiments (and their reports) need the dial and the sharpness plots;
kept in one of them, the other would import it back (the ``demo`` <-> ``moe`` circle of issue 21).
This module sits below both and imports only :mod:`adamoe.experiments.harness` and
:mod:`adamoe.experiments.tables`.

The dial: a null-logit bias is searched by bisection on the *validation* items (the only choice made,
so it never looks at test items), then accuracy and Load are measured on the first ``dial_per_task``
test items of every task at each bias found (and at 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["dial_points", "sharpness_and_dial_plots"]


def dial_points(model: Any, tok: Any, data: Any, cfg: Any, *, baseline_k: int) -> dict[str, Any]:
    """``{"searches": [...], "curve": [{"bias", "acc", "load"}, ...]}`` for ``cfg.dial_targets``.

    ``data``: an :class:`adamoe.experiments.harness.ExperimentData` (``calib`` = validation items);
    ``cfg`` needs ``dial_targets``, ``dial_iters``, ``dial_range``, ``dial_per_task`` and
    ``eval_batch_size``. The model's null bias is reset to 0 afterwards.
    """
    import numpy as np

    from adamoe.eval.dial import LoadCurve, dial_curve, search_null_bias, set_null_bias
    from adamoe.experiments.harness import score_tasks

    calib = {"calib": data.calib}
    dial_tests = {t: items[: cfg.dial_per_task] for t, items in data.tests.items()}

    def score(m: Any, tasks: dict[str, list]) -> dict[str, Any]:
        return score_tasks(m, tok, tasks, baseline_k=baseline_k, batch_size=cfg.eval_batch_size)

    def point(m: Any) -> dict[str, float]:
        runs = list(score(m, dial_tests).values())
        flops = [r.model_flops_per_token for r in runs if r.model_flops_per_token is not None]
        return {
            "acc": float(np.mean([np.mean(r.credit) for r in runs])),
            "load": float(np.mean([r.load for r in runs])),
            **({"model_flops_per_token": float(np.mean(flops))} if flops else {}),
        }

    curve = LoadCurve(model, lambda m: score(m, calib)["calib"].load, bound=cfg.dial_range)
    searches = [
        search_null_bias(model, None, target_load=t, iters=cfg.dial_iters, tol=0.05, curve=curve)
        for t in cfg.dial_targets
    ]
    curve = dial_curve(model, point, sorted({0.0, *(s["bias"] for s in searches)}))
    set_null_bias(model, 0.0)
    return {"searches": searches, "curve": curve}


def sharpness_and_dial_plots(
    run_dir: Path, runs: Any, dials: list[dict], variants: list[str]
) -> list[tuple[str, Path]]:
    """Sharpness per layer of each trained variant (paper Fig. 3) and the compute dial (all AdaMoE
    seeds' curves in one plot); ``runs[variant][seed][task]`` are :class:`TaskRun` records."""
    from adamoe.eval.plots import plot_dial, plot_sharpness
    from adamoe.experiments.tables import layer_loads
    from adamoe.stats import SHARPNESS_BINS

    def share(s: dict[str, Any]) -> Any:
        return s["sharpness"] / max(s["tokens"], 1)

    out = []
    for v in variants:
        layers = {
            g: {"sharpness": dict(zip(SHARPNESS_BINS, x))}
            for g, x in layer_loads(runs, v, value=share).items()
        }
        out.append(
            (
                f"Routing sharpness per layer, {v} (tokens needing n experts for 50% of router mass)",
                plot_sharpness(layers, run_dir / f"sharpness_{v}.png", title=v),
            )
        )
    points = [p for d in dials for p in d["curve"]]
    out.append(
        (
            "Compute dial: accuracy vs load over null-logit biases (all seeds)",
            plot_dial(points, run_dir / "compute_dial.png"),
        )
    )
    return out
