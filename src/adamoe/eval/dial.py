"""The compute dial: trade accuracy for load at inference, without retraining.

A bias added to every null expert's logit shifts picks from true experts to nulls (positive bias) or
back (negative). Load (true experts per token) is a non-increasing step function of the bias on a
fixed calibration set, so a bracketing search finds the bias that hits a target load and sweeping
targets gives the accuracy-vs-load curve.

Why not a plain bisection on a fixed range: on trained models the useful range is tiny and its scale
unknown (on the moefied SmolLM2 a bias of +0.06 already moves the load from 2.0 to 0.76), so halving
[-2, 2] spends most steps far outside it and lands on the same one or two loads for every target.
:class:`LoadCurve` instead starts at 0, expands geometrically from a small ``step`` until the target
is bracketed, then bisects geometrically (the midpoint of log|bias|), so it resolves biases of 1e-3
and of 10 alike. Every measurement is memoised, so searches for several targets share their points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from adamoe.routing.source import RoutingSource, routing_sources

__all__ = [
    "LoadCurve",
    "dial_biases",
    "dial_curve",
    "null_bias",
    "null_routers",
    "search_null_bias",
    "set_null_bias",
]


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


class LoadCurve:
    """Memoised load-vs-bias measurements of one model on one calibration set.

    ``measure_load(model)`` runs the calibration set and returns its mean load; it is called at most
    once per distinct bias. ``bound`` caps |bias| (the search never measures beyond it); ``step`` is
    the first bias tried on each side of 0 and ``growth`` the factor of each further expansion.
    """

    def __init__(
        self,
        model: nn.Module,
        measure_load: Callable[[nn.Module], float],
        *,
        step: float = 1e-2,
        growth: float = 4.0,
        bound: float = 64.0,
    ) -> None:
        if not (step > 0 and growth > 1 and bound >= step):
            raise ValueError(
                f"dial: expected step > 0, growth > 1, bound >= step; got {step}, {growth}, {bound}"
            )
        null_routers(model)  # fail early on a model without nulls
        self.model = model
        self.measure_load = measure_load
        self.step, self.growth, self.bound = float(step), float(growth), float(bound)
        self.points: dict[float, float] = {}
        self.trace: list[dict[str, float]] = []

    def at(self, bias: float) -> float:
        """The calibration load at ``bias`` (measured once, then remembered)."""
        bias = float(bias)
        if bias not in self.points:
            with null_bias(self.model, bias):
                self.points[bias] = float(self.measure_load(self.model))
            self.trace.append({"bias": bias, "load": self.points[bias]})
        return self.points[bias]

    def extremes(self) -> tuple[float, float]:
        """(min, max) load reachable within ``bound``: at bias +bound and -bound."""
        return self.at(self.bound), self.at(-self.bound)

    def _bracket(self, target: float) -> tuple[float, float]:
        """(inner, outer) biases on one side of 0 with load(inner) on the start side of ``target`` and
        load(outer) on the other (or outer = ±bound when the target is out of reach)."""
        sign = 1.0 if self.at(0.0) > target else -1.0  # too many true experts: push picks to nulls
        inner, outer = 0.0, sign * self.step
        while abs(outer) < self.bound and self._same_side(self.at(outer), target, sign):
            inner, outer = outer, sign * min(abs(outer) * self.growth, self.bound)
        return inner, outer

    @staticmethod
    def _same_side(load: float, target: float, sign: float) -> bool:
        return (load > target) if sign > 0 else (load < target)

    def search(self, target: float, *, iters: int = 12, tol: float = 0.01) -> dict[str, Any]:
        """The measured bias whose load is closest to ``target`` (ties: the smaller |bias|).

        Brackets the target (:meth:`_bracket`), then ``iters`` geometric bisections, stopping early
        once within ``tol``. Returns bias, load and the target.
        """
        if abs(self.at(0.0) - target) > tol:
            inner, outer = self._bracket(target)
            sign = 1.0 if outer > 0 else -1.0
            reachable = not self._same_side(self.at(outer), target, sign)
            for _ in range(iters if reachable else 0):
                if self._best(target)[0] <= tol or abs(outer - inner) <= 1e-9 * abs(outer):
                    break
                mid = sign * (math.sqrt(inner * outer) if inner else abs(outer) / self.growth)
                if inner == 0.0 and abs(mid) < 1e-6:
                    mid = 0.5 * outer  # geometric steps towards 0 never end: fall back to halving
                if self._same_side(self.at(mid), target, sign):
                    inner = mid
                else:
                    outer = mid
        _, bias, load = self._best(target)
        return {"bias": bias, "load": load, "target_load": float(target)}

    def _best(self, target: float) -> tuple[float, float, float]:
        gap, _, bias = min((abs(load - target), abs(b), b) for b, load in self.points.items())
        return gap, bias, self.points[bias]


def search_null_bias(
    model: nn.Module,
    measure_load: Callable[[nn.Module], float],
    *,
    target_load: float,
    low: float | None = None,
    high: float | None = None,
    iters: int = 12,
    tol: float = 0.01,
    step: float = 1e-2,
    curve: LoadCurve | None = None,
) -> dict[str, Any]:
    """The bias whose calibration load is closest to ``target_load`` (see :class:`LoadCurve`).

    ``low``/``high`` (optional) cap the search to ``[-max(|low|, |high|), +max(...)]`` (64 without
    them); ``iters`` counts the bisection steps after bracketing. Pass ``curve`` to share measurements
    between searches. The model's dial is left at the bias found; ``trace`` lists every measurement.
    """
    if curve is None:
        caps = [abs(v) for v in (low, high) if v is not None]
        curve = LoadCurve(
            model, measure_load, step=min(step, max(caps, default=64.0)), bound=max(caps, default=64.0)
        )
    found = curve.search(target_load, iters=iters, tol=tol)
    set_null_bias(model, found["bias"])
    return {**found, "trace": list(curve.trace)}


def dial_biases(curve: LoadCurve, *, num_points: int = 5, iters: int = 8, tol: float = 0.02) -> list[float]:
    """Biases for ``num_points`` loads evenly spaced strictly between the reachable min and max load
    (plus 0, the trained model), sorted and distinct: the x positions of a dial curve with several
    distinct loads rather than the same one or two."""
    if num_points < 1:
        raise ValueError(f"num_points: expected an int >= 1, got {num_points}")
    lo, hi = curve.extremes()
    targets = [lo + (hi - lo) * (i + 1) / (num_points + 1) for i in range(num_points)]
    found = {curve.search(t, iters=iters, tol=tol)["bias"] for t in targets}
    return sorted(found | {0.0})


def dial_curve(
    model: nn.Module, evaluate: Callable[[nn.Module], dict[str, float]], biases: list[float]
) -> list[dict[str, float]]:
    """Evaluate at each bias; ``evaluate`` returns at least ``{"acc": ..., "load": ...}``."""
    points = []
    for b in biases:
        with null_bias(model, b):
            points.append({"bias": float(b), **evaluate(model)})
    return points
