"""Uncertainty for every reported number: intervals, paired tests, chance levels and noise floors.

Why one module: a table that prints "41.3" beside "39.8" invites a conclusion the data may not
support. Reports therefore carry, for each accuracy or rate, its n and a 95% interval (`Estimate`),
the chance level with a flag when the interval does not clear it, paired tests for differences
between two models on the same items (`paired_difference`, Holm-corrected across tasks with
`holm`), and for routing drift a split-half noise floor (`split_half_floor`) to read it against.

Conventions:
- Per-item scores are arrays of shape ``(n_items,)`` or ``(n_seeds, n_items)``; items are the columns.
- Bootstrap intervals are percentile intervals; items and seeds are resampled independently (a
  two-way bootstrap), so both sources of variation widen the interval.
- Randomness comes only from a caller's ``np.random.Generator`` (never global state), and each
  purpose (bootstrap, permutation) draws from its own child stream spawned from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Any, overload

import numpy as np

__all__ = [
    "Estimate",
    "NoiseFloor",
    "PairedDifference",
    "bootstrap_ci",
    "chance_level",
    "holm",
    "mcnemar_exact",
    "paired_difference",
    "proportion_ci",
    "split_half_floor",
    "t_interval",
    "within_noise",
]

Stat = Callable[[np.ndarray], float]


def _interval(value: float, low: float, high: float, scale: float, digits: int) -> str:
    """``"41.3 [37.0, 45.6]"``: the one way a value and its interval are printed."""
    v, lo, hi = (f"{x * scale:.{digits}f}" for x in (value, low, high))
    return f"{v} [{lo}, {hi}]"


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """A point estimate with its interval, sample size and (optionally) the chance level to beat."""

    value: float
    low: float
    high: float
    n: int
    chance: float | None = None
    method: str = ""

    @property
    def above_chance(self) -> bool | None:
        """True when the whole interval lies above chance; None when no chance level is known."""
        return None if self.chance is None else self.low > self.chance

    def fmt(self, *, scale: float = 100.0, digits: int = 1) -> str:
        """``"41.3 [37.0, 45.6] (n=500)"``; with a chance level ``(n=500, chance 25.0)``, flagged
        ``not above chance`` when the interval reaches down to it."""
        extra = ""
        if self.chance is not None:
            extra = f", chance {self.chance * scale:.{digits}f}"
            extra += "" if self.above_chance else ", not above chance"
        return f"{_interval(self.value, self.low, self.high, scale, digits)} (n={self.n}{extra})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "above_chance": self.above_chance}


@dataclass(frozen=True, kw_only=True)
class PairedDifference:
    """Mean of a − b over the same items, its bootstrap interval and a paired test's p-value."""

    diff: float
    low: float
    high: float
    p: float
    n: int
    test: str
    level: float = 0.95
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        return self.p < self.alpha

    def fmt(self, *, scale: float = 100.0, digits: int = 1) -> str:
        """``"+2.4 [0.8, 4.0] p=0.003 (mcnemar-exact, n=500)"``."""
        sign = "+" if self.diff >= 0 else ""
        body = _interval(self.diff, self.low, self.high, scale, digits)
        return f"{sign}{body} p={self.p:.3g} ({self.test}, n={self.n})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


@dataclass(frozen=True, kw_only=True)
class NoiseFloor:
    """How large a statistic gets between two random halves of one set: drift below it is noise."""

    mean: float
    p95: float
    n_splits: int
    n: int


# ---------------------------------------------------------------- checks


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected a coverage in (0, 1) such as 0.95, got {level}")


def _check_count(value: int, name: str) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value}")


def _scores(x: Any, name: str) -> np.ndarray:
    """Per-item scores as float64 ``(n_seeds, n_items)``; a 1-D input is one seed."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected shape (n_items,) or (n_seeds, n_items), got {np.shape(x)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite scores, found NaN/inf (score missing items explicitly)")
    return arr


# ---------------------------------------------------------------- intervals


def proportion_ci(successes: int, n: int, *, level: float = 0.95, chance: float | None = None) -> Estimate:
    """Wilson score interval for ``successes`` out of ``n``.

    Why Wilson: unlike the normal (Wald) interval it never leaves [0, 1] and keeps close to nominal
    coverage at small n or rates near 0/1, where benchmark subsets often sit.
    """
    _check_level(level)
    _check_count(n, "n")
    if int(successes) != successes or not 0 <= successes <= n:
        raise ValueError(f"successes: expected an integer in [0, n={n}], got {successes}")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = max(0.0, center - half), min(1.0, center + half)
    return Estimate(value=p, low=low, high=high, n=int(n), chance=chance, method="wilson")


def _draw(rng: np.random.Generator, size: int, n_boot: int) -> np.ndarray:
    """Resampling with replacement: ``(n_boot, size)`` indices (all zeros when ``size == 1``)."""
    if size == 1:
        return np.zeros((n_boot, 1), dtype=np.int64)
    return rng.integers(0, size, size=(n_boot, size))


def _counts(idx: np.ndarray) -> np.ndarray:
    """``(n_boot, size)`` indices → how often each unit is drawn, ``(n_boot, size)`` float64."""
    n_boot, size = idx.shape
    flat = (idx + size * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * size).reshape(n_boot, size).astype(np.float64)


def _resampled_means(x: np.ndarray, item_idx: np.ndarray, seed_idx: np.ndarray) -> np.ndarray:
    """Mean of ``x[seeds*][:, items*]`` for each draw without building it: Σ c_s d_i x_si / (S·I).

    x: (S, I); item_idx: (B, I); seed_idx: (B, S) → (B,).
    """
    per_seed = _counts(item_idx) @ x.T  # (B, S): Σ_i d_i x_si
    return (per_seed * _counts(seed_idx)).sum(axis=1) / x.size


def _percentile(boots: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_ci(
    per_item: Any,
    *,
    rng: np.random.Generator,
    stat: Stat | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    chance: float | None = None,
) -> Estimate:
    """Percentile bootstrap interval of a metric over items and seeds.

    per_item: ``(n_items,)`` or ``(n_seeds, n_items)`` scores. Each draw resamples items (columns)
    and seeds (rows) independently, so the interval reflects both "other questions" and "another
    training run"; with one seed it is the plain item bootstrap. ``stat`` maps a resampled
    ``(n_seeds, n_items)`` array to a float (default: the mean, computed without materialising the
    resamples). The reported value is ``stat`` of the data itself; ``n`` is the number of items.
    """
    _check_level(level)
    _check_count(n_boot, "n_boot")
    x = _scores(per_item, "per_item")
    n_seeds, n_items = x.shape
    item_idx = _draw(rng, n_items, n_boot)  # items first: one seed draws the same items as 1-D input
    seed_idx = _draw(rng, n_seeds, n_boot)
    if stat is None:
        value = float(x.mean())
        boots = _resampled_means(x, item_idx, seed_idx)
    else:
        value = float(stat(x))
        boots = np.array([stat(x[np.ix_(s, i)]) for s, i in zip(seed_idx, item_idx)], dtype=np.float64)
    low, high = _percentile(boots, level)
    method = "bootstrap" if n_seeds == 1 else f"bootstrap items x {n_seeds} seeds"
    return Estimate(value=value, low=low, high=high, n=n_items, chance=chance, method=method)


def chance_level(num_choices: Sequence[int]) -> float:
    """Expected accuracy of uniform guessing: mean of 1/k over items with k choices each."""
    ks = np.asarray(num_choices, dtype=np.float64)
    if ks.ndim != 1 or ks.size == 0 or (ks < 1).any() or (ks != np.round(ks)).any():
        raise ValueError(f"num_choices: expected a non-empty list of integers >= 1, got {num_choices!r}")
    return float((1.0 / ks).mean())


def t_interval(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (e.g. one difference per training seed): mean +-
    t_{n-1} sd / sqrt(n). Assumes normal values; (nan, nan) below two values. Why: with few seeds the
    exact sign-flip test cannot reach 0.05, but the interval still bounds the run-to-run-aware effect."""
    from scipy.stats import t as student_t

    _check_level(level)
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return float("nan"), float("nan")
    half = float(student_t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return float(x.mean() - half), float(x.mean() + half)


# ---------------------------------------------------------------- paired tests


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial(n=a_only+b_only, ½) test on the discordant pairs.

    Why exact: discordant counts in small benchmarks are often under 25, where the chi-square
    approximation misstates p. Computed with integers, so it is exact up to the final float.
    """
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(a_only, b_only) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def _sign_flip_p(d: np.ndarray, *, rng: np.random.Generator, n_perm: int) -> tuple[float, str]:
    """Two-sided sign-flip test of mean(d) = 0 for per-item differences d ``(n_items,)``.

    Under the null, a and b are exchangeable within an item, so each difference's sign is a coin
    flip. Items with d = 0 do not move the statistic; if the remaining 2^m patterns fit in
    ``n_perm`` they are enumerated (exact p), otherwise ``n_perm`` random flips are drawn.
    """
    nz = d[d != 0]
    m = nz.size
    observed = abs(nz.sum())
    tol = 1e-9 * max(float(np.abs(nz).sum()), 1e-300)
    if m == 0:
        return 1.0, "sign-flip exact"
    if 2**m <= n_perm:
        signs = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) * 2.0 - 1.0
        return float((np.abs(signs @ nz) >= observed - tol).mean()), "sign-flip exact"
    hits = 0
    for start in range(0, n_perm, 1024):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(1024, n_perm - start), m))
        hits += int((np.abs(signs @ nz) >= observed - tol).sum())
    return (1 + hits) / (1 + n_perm), "sign-flip permutation"


def paired_difference(
    a: Any,
    b: Any,
    *,
    rng: np.random.Generator,
    n_boot: int = 2000,
    n_perm: int = 10000,
    level: float = 0.95,
    alpha: float = 0.05,
    paired_seeds: bool = True,
) -> PairedDifference:
    """Compare two systems scored on the same items: mean(a) − mean(b), its CI and a p-value.

    a, b: ``(n_items,)`` or ``(n_seeds, n_items)`` with the same items (columns). The interval
    resamples items jointly for a and b — the pairing that removes item difficulty from the
    comparison. Seeds: with ``paired_seeds`` (row s of a and of b ran with the same seed, so share
    data order and initialisation) they are resampled jointly too and the counts must match; with
    ``paired_seeds=False`` each side's seeds are resampled on their own. The p-value: exact McNemar
    for 0/1 scores with one seed each; otherwise a sign-flip test on per-item differences of seed means.
    """
    _check_level(level)
    _check_count(n_boot, "n_boot")
    _check_count(n_perm, "n_perm")
    xa, xb = _scores(a, "a"), _scores(b, "b")
    if xa.shape[1] != xb.shape[1]:
        raise ValueError(f"b: expected the same {xa.shape[1]} items as a, got {xb.shape[1]}")
    if paired_seeds and xa.shape[0] != xb.shape[0]:
        raise ValueError(
            f"b: expected {xa.shape[0]} seeds like a for paired seeds, got {xb.shape[0]} "
            "(pass paired_seeds=False for unrelated seeds)"
        )
    boot_rng, perm_rng = rng.spawn(2)
    item_idx = _draw(boot_rng, xa.shape[1], n_boot)
    seeds_a = _draw(boot_rng, xa.shape[0], n_boot)
    seeds_b = seeds_a if paired_seeds else _draw(boot_rng, xb.shape[0], n_boot)
    boots_a = _resampled_means(xa, item_idx, seeds_a)
    boots_b = _resampled_means(xb, item_idx, seeds_b)
    low, high = _percentile(boots_a - boots_b, level)
    binary = np.isin(xa, (0.0, 1.0)).all() and np.isin(xb, (0.0, 1.0)).all()
    if binary and xa.shape[0] == 1 and xb.shape[0] == 1:
        a_only = int(((xa[0] == 1) & (xb[0] == 0)).sum())
        b_only = int(((xa[0] == 0) & (xb[0] == 1)).sum())
        p, test = mcnemar_exact(a_only, b_only), "mcnemar-exact"
    else:
        p, test = _sign_flip_p(xa.mean(axis=0) - xb.mean(axis=0), rng=perm_rng, n_perm=n_perm)
    diff = float(xa.mean() - xb.mean())
    return PairedDifference(
        diff=diff, low=low, high=high, p=p, n=xa.shape[1], test=test, level=level, alpha=alpha
    )


@overload
def holm(pvalues: Mapping[str, float]) -> dict[str, float]: ...
@overload
def holm(pvalues: Sequence[float]) -> list[float]: ...
def holm(pvalues: Mapping[str, float] | Sequence[float]) -> dict[str, float] | list[float]:
    """Holm step-down adjusted p-values, in the input's order (or keyed like a mapping).

    Why: a report that tests one difference per task makes many comparisons; Holm controls the
    chance of any false "significant" across them, and is never less powerful than Bonferroni.
    """
    keys = list(pvalues) if isinstance(pvalues, Mapping) else None
    ps = np.asarray([pvalues[k] for k in keys] if keys is not None else pvalues, dtype=np.float64)
    if ps.ndim != 1 or ((ps < 0) | (ps > 1) | np.isnan(ps)).any():
        raise ValueError(f"pvalues: expected p-values in [0, 1], got {list(ps)}")
    order = np.argsort(ps, kind="stable")
    m = ps.size
    stepped = np.minimum(1.0, (m - np.arange(m)) * ps[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    out = [float(x) for x in adjusted]
    return dict(zip(keys, out)) if keys is not None else out


# ---------------------------------------------------------------- noise floors


def split_half_floor(
    samples: Any,
    stat: Callable[[np.ndarray, np.ndarray], float],
    *,
    rng: np.random.Generator,
    n_splits: int = 200,
) -> NoiseFloor:
    """The statistic between two random halves of one set: what "drift" looks like with no shift.

    samples: ``(n, d)`` per-item values, e.g. each item's routing distribution over d experts.
    stat(half_a ``(⌊n/2⌋, d)``, half_b ``(⌈n/2⌉, d)``) → float, e.g. the JS divergence between the
    halves' mean distributions. Compare an observed clean-vs-shifted value with ``within_noise``.
    The halves hold n/2 items, so for plug-in divergences (bias ~ 1/n) the floor is conservative —
    roughly twice the noise of two full sets of n.
    """
    _check_count(n_splits, "n_splits")
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"samples: expected shape (n, d) with n >= 2 items, got {np.shape(samples)}")
    half = x.shape[0] // 2
    values = np.empty(n_splits)
    for k in range(n_splits):
        perm = rng.permutation(x.shape[0])
        values[k] = stat(x[perm[:half]], x[perm[half:]])
    return NoiseFloor(
        mean=float(values.mean()), p95=float(np.quantile(values, 0.95)), n_splits=n_splits, n=x.shape[0]
    )


def within_noise(observed: float, floor: NoiseFloor) -> bool:
    """True when an observed drift does not exceed the 95th percentile of the split-half floor."""
    return observed <= floor.p95
