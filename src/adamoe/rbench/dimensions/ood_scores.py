"""The OOD dimension's numbers: accuracy per set, gaps with intervals, clustered by underlying item.

Kept apart from `ood` (data and config) because this is where the statistics live. Every pooled number
counts an underlying item once:
- surface shifts (case, typos) are copies of the ID items: `surface_acc` is each ID item's
  credit averaged over the counted shifts (one score per item, bootstrap interval), `surface_gap` the
  paired difference of chance-normalised credit, ID minus that per-item shift mean;
- neighbour data sets (RTE → CB, ARC-Easy → ARC-Challenge) hold other items: `domain_acc` pools them,
  `domain_gap` is the unpaired difference to the ID items of the pairs that have a neighbour.
Per-shift and per-set gaps stay in the details, each with its p-value Holm-adjusted across all of them
(`p_holm`); no maximum over gaps is reported. `OODData` (what `ood` loads and this module scores)
lives here, so `ood` imports this module and never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from adamoe.data.spans import SpanMCItem, span_to_mc
from adamoe.eval.estimates import ItemScores, estimate, item_chance, item_scores, stream, unpaired_difference
from adamoe.eval.significance import holm, paired_difference
from adamoe.rbench.perturb.shifts import ShiftConfig, shift_field

if TYPE_CHECKING:
    from adamoe.eval.evaluator import ModelEvaluator

__all__ = ["OODData", "OODScores", "ood_scores", "shift_changes"]


@dataclass(kw_only=True)
class OODData:
    """ID items of every pair (with their pair), other data sets by name, style shifts, fine-tuning items."""

    id_items: list[SpanMCItem]
    id_pair: dict[str, str]
    sets: dict[str, list[SpanMCItem]]
    set_pair: dict[str, str]
    shifts: list[ShiftConfig]


@dataclass(kw_only=True)
class OODScores:
    """Per-item scores (id_acc, surface_acc, domain_acc), direct estimates (gaps), per-shift details."""

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


def _style_gap(base: _Scored, shifted: np.ndarray, seed: int, name: str) -> dict[str, Any]:
    """Paired gap on the same items: ID chance-normalised credit minus `shifted` (one value per item)."""
    d = paired_difference(base.norm, shifted, rng=stream(seed, "gap", name))
    return {"value": d.diff, "low": d.low, "high": d.high, "n": d.n, "p": d.p, "method": d.test}


def ood_scores(
    ev: ModelEvaluator, dimension: str, data: OODData, *, min_changed: float, seed: int
) -> OODScores:
    """Score ID, surface-shifted and neighbour sets; see the module docstring."""
    out = OODScores()
    base = _score(ev, dimension, "ood/id", data.id_items)
    out.items["id_acc"] = item_scores(base.ids, base.credit, chance=float(np.mean(base.chance)))
    surface: list[_Scored] = []
    for cfg in data.shifts:
        shifted_items = shift_field(data.id_items, cfg, field="text")
        changed = shift_changes(data.id_items, shifted_items)
        s = _score(ev, dimension, f"ood/{cfg.name}", shifted_items)
        counted = changed >= min_changed * len(shifted_items) and changed > 0
        out.details[cfg.name] = {
            "kind": "surface",
            "acc": _acc(s, seed, f"ood/{cfg.name}"),
            "gap": _style_gap(base, s.norm, seed, cfg.name),
            "changed": changed,
            "n": len(shifted_items),
            "counted": counted,
        }
        if counted:
            surface.append(s)
    if surface:
        mean_credit = np.mean([s.credit for s in surface], axis=0)
        out.items["surface_acc"] = item_scores(base.ids, mean_credit, chance=float(np.mean(base.chance)))
        mean_norm = np.mean([s.norm for s in surface], axis=0)
        out.estimates["surface_gap"] = _style_gap(base, mean_norm, seed, "surface")
    _domain(ev, dimension, data, base, out, seed)
    tested = {k: v["gap"] for k, v in out.details.items() if v["counted"] and v["gap"].get("p") is not None}
    if tested:
        for k, p in holm({k: g["p"] for k, g in tested.items()}).items():
            out.details[k]["gap"]["p_holm"] = p
    return out


def _domain(
    ev: ModelEvaluator, dimension: str, data: OODData, base: _Scored, out: OODScores, seed: int
) -> None:
    """Neighbour data sets: accuracy and unpaired gap per set, then pooled (each item once)."""
    pooled: list[_Scored] = []
    ref_ids: set[str] = set()
    for name, items in data.sets.items():
        s = _score(ev, dimension, f"ood/{name}", items)
        pair_ids = {i for i, p in data.id_pair.items() if p == data.set_pair[name]}
        ref_ids |= pair_ids
        ref = np.array([v for i, v in zip(base.ids, base.norm) if i in pair_ids])
        out.details[name] = {
            "kind": "dataset",
            "pair": data.set_pair[name],
            "acc": _acc(s, seed, f"ood/{name}"),
            "gap": unpaired_difference(ref, s.norm, rng=stream(seed, "gap", name)),
            "n": len(items),
            "counted": True,
        }
        pooled.append(s)
    if not pooled:
        return
    ids = [i for s in pooled for i in s.ids]
    chance = [c for s in pooled for c in s.chance]
    out.items["domain_acc"] = item_scores(
        ids, [c for s in pooled for c in s.credit], chance=float(np.mean(chance))
    )
    ref = np.array([v for i, v in zip(base.ids, base.norm) if i in ref_ids])
    norm = np.concatenate([s.norm for s in pooled])
    out.estimates["domain_gap"] = unpaired_difference(ref, norm, rng=stream(seed, "gap", "domain"))
