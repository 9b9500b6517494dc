"""How the reliability report's pre-formatted cells show values: percents, numbers, signed deltas, a dash for none.

Strict-JSON copies of results are `adamoe.eval.report.json_safe`."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["DASH", "delta", "num", "pct"]

DASH = "–"


def pct(v: Any) -> str:
    """A fraction as a percent with one decimal; a dash for None/NaN."""
    return DASH if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * float(v):.1f}"


def num(v: Any, spec: str = ".3f") -> str:
    """A number in `spec` format; a dash for None/NaN."""
    return DASH if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(float(v), spec)


def delta(v: Any, spec: str = "+.3f") -> str:
    """A signed difference; a dash for None/NaN."""
    return num(v, spec)
