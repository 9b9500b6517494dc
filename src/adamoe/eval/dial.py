"""The compute dial: trade accuracy for load at inference, without retraining.

A bias added to every null expert's logit shifts picks from true experts to nulls (positive bias) or
back (negative). Load falls monotonically with the bias, so a bisection on a calibration set finds the
bias that hits a target load; sweeping it gives the accuracy-vs-load curve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from adamoe.routing.source import RoutingSource, routing_sources


def null_routers(model: nn.Module) -> list[RoutingSource]:
    """Routing sources with null experts (MoE layers, converted HF routers, Mo-LoRA): what the dial sets."""
    found = [m for _, m in routing_sources(model) if m.num_null > 0]
    if not found:
        raise ValueError("model: no router with null experts found (the compute dial needs num_null > 0)")
    return found


def set_null_bias(model: nn.Module, bias: float) -> None:
    """Set the compute dial: add ``bias`` to the null-expert logits of every router of ``model``."""
    for router in null_routers(model):
        router.null_bias = float(bias)


@contextmanager
def null_bias(model: nn.Module, bias: float) -> Iterator[None]:
    """Temporarily set the dial, restoring the previous biases after."""
    routers = null_routers(model)
    before = [r.null_bias for r in routers]
    try:
        for r in routers:
            r.null_bias = float(bias)
        yield
    finally:
        for r, b in zip(routers, before):
            r.null_bias = b


def search_null_bias(
    model: nn.Module,
    measure_load: Callable[[nn.Module], float],
    *,
    target_load: float,
    low: float = -10.0,
    high: float = 10.0,
    iters: int = 12,
    tol: float = 0.01,
) -> dict[str, Any]:
    """Bisection for the bias whose load on the calibration set is closest to ``target_load``.

    ``measure_load(model)`` runs the calibration set and returns the mean load. The model's dial is
    left at the bias found.
    """
    trace = []
    best = (float("inf"), 0.0, float("nan"))
    for _ in range(iters):
        mid = 0.5 * (low + high)
        with null_bias(model, mid):
            load = measure_load(model)
        trace.append({"bias": mid, "load": load})
        gap = abs(load - target_load)
        if gap < best[0]:
            best = (gap, mid, load)
        if gap <= tol:
            break
        if load > target_load:
            low = mid  # too many true experts: push more picks to nulls
        else:
            high = mid
    set_null_bias(model, best[1])
    return {"bias": best[1], "load": best[2], "target_load": target_load, "trace": trace}


def dial_curve(
    model: nn.Module, evaluate: Callable[[nn.Module], dict[str, float]], biases: list[float]
) -> list[dict[str, float]]:
    """Evaluate at each bias; ``evaluate`` returns at least ``{"acc": ..., "load": ...}``."""
    points = []
    for b in biases:
        with null_bias(model, b):
            points.append({"bias": float(b), **evaluate(model)})
    return points
