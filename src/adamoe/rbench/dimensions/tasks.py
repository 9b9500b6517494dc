"""Multiple-choice helpers every dimension shares: chance levels and per-group interval estimates.

The model's pick is the first choice with the highest log-likelihood (lm-eval's argmax, so ties count as
the first choice) and the item earns that choice's credit (`MCExample.credit`); the chance level is the
expected credit of a uniform guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from adamoe.rbench.records import MCExample
from adamoe.rbench.uncertainty import estimate, item_scores, stream

if TYPE_CHECKING:
    pass

__all__ = ["group_estimates", "item_chance", "uniform_chance"]


def uniform_chance(examples: Sequence[MCExample]) -> float:
    """Expected credit of picking a choice uniformly at random, averaged over items."""
    return float(np.mean([item_chance(ex) for ex in examples]))


def item_chance(ex: MCExample) -> float:
    """Expected credit of a uniform guess on one item."""
    return float(np.mean(ex.scores)) if ex.scores is not None else 1 / len(ex.choices)


def group_estimates(
    ids: Sequence[str],
    groups: Sequence[str],
    scores: Sequence[float],
    *,
    seed: int,
    where: str,
    chances: Sequence[float] | None = None,
) -> dict[str, dict[str, Any] | None]:
    """Interval estimate per group (task, ANLI round) — only when there are several."""
    members: dict[str, list[int]] = {}
    for k, g in enumerate(groups):
        members.setdefault(g, []).append(k)
    if len(members) < 2:
        return {}
    out = {}
    for g, idx in sorted(members.items()):
        chance = float(np.mean([chances[k] for k in idx])) if chances is not None else None
        entry = item_scores([ids[k] for k in idx], [scores[k] for k in idx], chance=chance)
        est = estimate(entry, rng=stream(seed, "ci", where, g))
        out[g] = est.to_dict() if est is not None else None
    return out
