"""The OOD dimension's numbers: accuracy per set, gaps with intervals, no-op shifts left out of the means.

Kept apart from `ood` (data and config) because this is where the statistics live: per-item credit
and chance-normalised credit, paired gaps for style shifts (same items), unpaired gaps for other data
sets, and the pooled `id_acc` / `ood_acc_mean` / `gap_mean` / `gap_max`. See `ood`'s docstring for
the definitions. `OODData` (what `ood` loads and this module scores) lives here, so `ood` imports
this module and never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from adamoe.eval.significance import paired_difference
from adamoe.rbench.data.formats import span_to_mc
from adamoe.rbench.dimensions.tasks import item_chance
from adamoe.rbench.perturb.shifts import ShiftConfig, shift_field
from adamoe.rbench.records import SpanMCItem
from adamoe.rbench.uncertainty import ItemScores, estimate, item_scores, stream, unpaired_difference

if TYPE_CHECKING:
    from adamoe.rbench.evaluator import ModelEvaluator

__all__ = ["OODData", "OODScores", "ood_scores", "shift_changes"]


@dataclass(kw_only=True)
class OODData:
    """ID items of every pair (with their pair), other data sets by name, style shifts, fine-tuning items."""

    id_items: list[SpanMCItem]
    id_pair: dict[str, str]
    sets: dict[str, list[SpanMCItem]]
    set_pair: dict[str, str]
    shifts: list[ShiftConfig]
    train_items: list[SpanMCItem] = field(default_factory=list)


@dataclass(kw_only=True)
class OODScores:
    """Per-item scores (id_acc, ood_acc_mean), direct estimates (gaps) and per-shift details."""

    items: dict[str, ItemScores] = field(default_factory=dict)
    estimates: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(kw_only=True)
class _Scored:
    """One scored set: ids, credit, chance per item, and chance-normalised credit."""

    ids: list[str]
    credit: list[float]
    chance: list[float]

    @property
    def norm(self) -> np.ndarray:
        c, ch = np.asarray(self.credit), np.asarray(self.chance)
        return (c - ch) / (1.0 - ch)


def _score(ev: ModelEvaluator, dimension: str, stage: str, items: Sequence[SpanMCItem]) -> _Scored:
    examples = [span_to_mc(it) for it in items]
    records = ev.score(dimension, stage, examples)
    return _Scored(
        ids=[ex.id for ex in examples],
        credit=[ex.credit(r.pred) for ex, r in zip(examples, records)],
        chance=[item_chance(ex) for ex in examples],
    )


def _acc(s: _Scored, seed: int, name: str) -> dict[str, Any] | None:
    est = estimate(
        item_scores(s.ids, s.credit, chance=float(np.mean(s.chance))), rng=stream(seed, "ci", name)
    )
    return est.to_dict() if est is not None else None


def shift_changes(original: Sequence[SpanMCItem], shifted: Sequence[SpanMCItem]) -> int:
    """How many items a style shift actually changed."""
    return sum(a.text != b.text for a, b in zip(original, shifted))


def _style_gap(base: _Scored, shifted: _Scored, seed: int, name: str) -> dict[str, Any]:
    d = paired_difference(base.norm, shifted.norm, rng=stream(seed, "gap", name))
    return {"value": d.diff, "low": d.low, "high": d.high, "n": d.n, "p": d.p, "method": d.test}


def ood_scores(
    ev: ModelEvaluator, dimension: str, data: OODData, *, min_changed: float, seed: int
) -> OODScores:
    """Score ID, style-shifted and other sets; see the module docstring."""
    out = OODScores()
    base = _score(ev, dimension, "ood/id", data.id_items)
    out.items["id_acc"] = item_scores(base.ids, base.credit, chance=float(np.mean(base.chance)))
    pooled: list[tuple[str, _Scored]] = []
    for cfg in data.shifts:
        shifted_items = shift_field(data.id_items, cfg, field="text")
        changed = shift_changes(data.id_items, shifted_items)
        s = _score(ev, dimension, f"ood/{cfg.name}", shifted_items)
        counted = changed >= min_changed * len(shifted_items) and changed > 0
        out.details[cfg.name] = {
            "kind": "style",
            "acc": _acc(s, seed, f"ood/{cfg.name}"),
            "gap": _style_gap(base, s, seed, cfg.name),
            "changed": changed,
            "n": len(shifted_items),
            "counted": counted,
        }
        if counted:
            pooled.append((cfg.name, s))
    for name, items in data.sets.items():
        s = _score(ev, dimension, f"ood/{name}", items)
        pair_ids = {i for i, p in data.id_pair.items() if p == data.set_pair[name]}
        ref = np.array([v for i, v in zip(base.ids, base.norm) if i in pair_ids])
        gap = unpaired_difference(ref, s.norm, rng=stream(seed, "gap", name)).to_dict()
        out.details[name] = {
            "kind": "dataset",
            "pair": data.set_pair[name],
            "acc": _acc(s, seed, f"ood/{name}"),
            "gap": gap,
            "n": len(items),
            "counted": True,
        }
        pooled.append((name, s))
    _pooled(out, base, pooled, seed)
    return out


def _pooled(out: OODScores, base: _Scored, pooled: list[tuple[str, _Scored]], seed: int) -> None:
    """ood_acc_mean (items of every counted set), gap_mean (pooled) and gap_max (largest set gap)."""
    if not pooled:
        return
    ids = [f"{name}:{i}" for name, s in pooled for i in s.ids]
    credit = [c for _, s in pooled for c in s.credit]
    chance = [c for _, s in pooled for c in s.chance]
    out.items["ood_acc_mean"] = item_scores(ids, credit, chance=float(np.mean(chance)))
    norm = np.concatenate([s.norm for _, s in pooled])
    out.estimates["gap_mean"] = unpaired_difference(
        base.norm, norm, rng=stream(seed, "gap", "mean")
    ).to_dict()
    worst = max((name for name, _ in pooled), key=lambda k: out.details[k]["gap"]["value"])
    out.estimates["gap_max"] = {**out.details[worst]["gap"], "shift": worst}
