"""Paired per-round ratios with bootstrap intervals: the one way a benchmark ratio is reported.

Why paired: in round ``r`` both candidates ran within the same few seconds (:mod:`adamoe.bench.timing`),
so ``a[r] / b[r]`` cancels the machine's drift that a ratio of two medians from different minutes keeps.
The estimate is the geometric mean of the per-round ratios, ``exp(mean_r log(a[r] / b[r]))``: ratios
multiply, and ``log`` makes ``a/b`` and ``b/a`` exact reciprocals. Its interval is the percentile
bootstrap over rounds of that mean (:func:`adamoe.eval.significance.bootstrap_ci` on the log ratios,
mapped back through ``exp``). With the 7-25 rounds a benchmark runs, a percentile bootstrap is somewhat
narrow (it cannot see spread the rounds did not show); it is what the tables print, with ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from adamoe.eval.significance import bootstrap_ci

__all__ = ["N_BOOT", "fmt_ratio", "paired_ratio", "per_round"]

N_BOOT = 4000
"""Bootstrap draws per interval (the interval's own Monte-Carlo error is then well under its width)."""


def paired_ratio(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    seed: int = 0,
    n_boot: int = N_BOOT,
    level: float = 0.95,
) -> dict[str, Any]:
    """Geometric mean of ``numerator[r] / denominator[r]`` over rounds and its bootstrap interval.

    Both: ``(rounds,)`` positive seconds (or any positive per-round quantity) in round order. Returns
    ``{"ratio", "low", "high", "n", "level"}`` (JSON-ready). ``seed`` fixes the bootstrap draws, so a
    rerun on the same samples prints the same interval.
    """
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    if num.shape != den.shape or num.ndim != 1 or num.size < 2:
        raise ValueError(
            f"paired_ratio: expected two equal-length sequences of >= 2 rounds, got shapes {num.shape} "
            f"and {den.shape}; time more rounds (--repeats)"
        )
    if not ((num > 0) & (den > 0) & np.isfinite(num) & np.isfinite(den)).all():
        raise ValueError(
            "paired_ratio: expected positive finite per-round values, got a zero, negative or NaN"
        )
    est = bootstrap_ci(np.log(num / den), rng=np.random.default_rng(seed), n_boot=n_boot, level=level)
    return {
        "ratio": math.exp(est.value),
        "low": math.exp(est.low),
        "high": math.exp(est.high),
        "n": int(num.size),
        "level": level,
    }


def per_round(times: dict[str, list[float]], *names: str) -> list[float]:
    """The per-round sum of the named candidates' seconds (e.g. the parts of a limit)."""
    return [sum(values) for values in zip(*(times[n] for n in names), strict=True)]


def fmt_ratio(r: dict[str, Any] | None, *, digits: int = 3) -> str:
    """``"1.234 [1.201, 1.266]"``, or ``"n/a"`` for a ratio that could not be formed."""
    if r is None:
        return "n/a"
    return f"{r['ratio']:.{digits}f} [{r['low']:.{digits}f}, {r['high']:.{digits}f}]"
