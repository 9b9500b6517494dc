"""OOD robustness: accuracy on in-distribution (ID) sets, on surface-shifted copies of them, and on a
neighbouring data set of the same task (a domain shift); the gap of each.

Default pairs (offline test parts, lm-eval prompts): entailment — RTE (ID) → CB; science QA — ARC-Easy
(ID) → ARC-Challenge. The main pair is `id` + `sets`, more pairs go in `pairs`
({name: {id: ..., sets: [...]}}); every source is an offline task of `data.offline.SPAN_PATTERNS`.
Domain shifts follow the paper's protocol: the suite fine-tunes every model on the ID tasks' train parts
(`finetune.tasks`) and tests on their neighbours, which it never trains on.

Surface shifts (`adamoe.rbench.perturb.shifts`: case, typos) edit the ID items' span only
(the task's template stays), so ID and shifted items are paired by id. A shift that changes fewer than
`min_changed` of the items is marked a no-op and left out of `surface_acc` and the gaps.

Gaps compare chance-normalised accuracy, (credit − chance) / (1 − chance) per item, so a 3-way OOD set is
not "harder" than a 2-way ID set merely by its chance level. Pooled numbers count every underlying item
once (`ood_scores`); every per-shift / per-set gap carries a Holm-adjusted p-value, and no maximum over
gaps is reported. Routing drift: the ID items are the clean reference for every shifted set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adamoe.data.spans import SPAN_PATTERNS, load_span_task
from adamoe.eval.evaluator import ModelEvaluator
from adamoe.eval.routing_drift import routing_report
from adamoe.rbench.dimensions.base import DimensionResult
from adamoe.rbench.dimensions.ood_scores import OODData, ood_scores
from adamoe.rbench.perturb.shifts import REMOVED_SHIFTS, SHIFT_KINDS, ShiftConfig, default_shifts
from adamoe.utils.config import Config, option, require

__all__ = ["OODConfig", "OODData", "OODDimension"]


@dataclass(kw_only=True)
class OODConfig(Config):
    """ID sets, their neighbours and the surface shifts of the OOD dimension."""

    section = "ood"
    id: str = "rte"
    sets: list[str] = field(default_factory=lambda: ["cb"])
    pairs: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"science": {"id": "arc_easy", "sets": ["arc_challenge"]}}
    )
    set_limit: int | None = option(60, ge=1)
    """Items per set (hash order, a fixed sample); `--limit` lowers it further."""
    shifts: str | list[str | dict[str, Any]] | None = "default"
    min_changed: float = option(0.5, ge=0.0, le=1.0)
    """A surface shift that changes fewer than this share of the items is a no-op: marked, not counted."""

    def check(self) -> None:
        self.shift_configs(seed=0)
        for name, pair in self.pairs.items():
            require(
                isinstance(pair, dict) and "id" in pair and set(pair) <= {"id", "sets"},
                f"{self._name('pairs')}.{name}: expected {{id: <task>, sets: [<task>, ...]}}, got {pair!r}",
            )
        names = [n for _, (i, s) in self.all_pairs().items() for n in (i, *s)]
        bad = sorted(set(names) - set(SPAN_PATTERNS))
        require(
            not bad, f"{self._name('sets')}: unknown task(s) {bad}; expected some of {sorted(SPAN_PATTERNS)}"
        )
        others = [n for _, (_, s) in self.all_pairs().items() for n in s]
        require(len(set(others)) == len(others), f"{self._name('sets')}: a neighbour appears twice: {others}")

    def all_pairs(self) -> dict[str, tuple[str, list[str]]]:
        """{pair name: (ID task, neighbour tasks)}; the main pair is named after its ID task."""
        pairs = {self.id: (self.id, list(self.sets))}
        for name, pair in self.pairs.items():
            require(name not in pairs, f"{self._name('pairs')}: pair name {name!r} is taken; rename it")
            pairs[name] = (pair["id"], list(pair.get("sets") or []))
        return pairs

    def shift_configs(self, *, seed: int) -> list[ShiftConfig]:
        """The configured surface shifts ('default', 'none' or a list of kinds / ShiftConfig mappings)."""
        if self.shifts == "default":
            return default_shifts(seed=seed)
        if self.shifts in ("none", None):
            return []
        where = self._name("shifts")
        require(
            isinstance(self.shifts, list),
            f"{where}: expected 'default', 'none' or a list, got {self.shifts!r}",
        )
        out = []
        for s in self.shifts:
            spec = {"kind": s} if isinstance(s, str) else dict(s)
            require(
                spec.get("kind") not in REMOVED_SHIFTS,
                f"{where}: shift {spec.get('kind')!r} was removed (it changed too few items); use some of "
                f"{list(SHIFT_KINDS)}",
            )
            if "typo_kinds" in spec:
                spec["typo_kinds"] = tuple(spec["typo_kinds"])
            spec.setdefault("seed", seed)
            try:
                out.append(ShiftConfig.from_mapping(spec))
            except TypeError as exc:
                raise ValueError(f"{where}: {exc}; expected kind in {list(SHIFT_KINDS)}") from None
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        names = [c.name for c in out]
        require(len(set(names)) == len(names), f"{where}: duplicate shift names {names}")
        return out


class OODDimension:
    """See the module docstring."""

    name = "ood"

    def __init__(self, config: OODConfig | None = None) -> None:
        self.config = config or OODConfig()
        self.config.validate()

    def load(self, *, limit: int | None, seed: int) -> OODData:
        cfg = self.config
        cap = min((c for c in (limit, cfg.set_limit) if c is not None), default=None)
        data = OODData(id_items=[], id_pair={}, sets={}, set_pair={}, shifts=cfg.shift_configs(seed=seed))
        for pair, (id_task, others) in cfg.all_pairs().items():
            for it in load_span_task(id_task, limit=cap):
                data.id_items.append(it)
                data.id_pair[it.id] = pair
            for task in others:
                data.sets[f"data:{task}"] = load_span_task(task, limit=cap)
                data.set_pair[f"data:{task}"] = pair
        return data

    def sizes(self, data: OODData) -> dict[str, int]:
        return {"id": len(data.id_items), **{k: len(v) for k, v in data.sets.items()}}

    def run(self, ev: ModelEvaluator, data: OODData, *, seed: int) -> DimensionResult:
        scored = ood_scores(ev, self.name, data, min_changed=self.config.min_changed, seed=seed)
        groups: dict[str, tuple[str, list[str] | None]] = {"id": ("ood/id", None)}
        pairs = {}
        for k, d in scored.details.items():
            groups[k] = (f"ood/{k}", None)
            pairs[k] = "id" if d["kind"] == "surface" else f"id:{d['pair']}"  # a neighbour vs its own ID task
            if d["kind"] == "dataset":
                groups[pairs[k]] = ("ood/id", [i for i, p in data.id_pair.items() if p == d["pair"]])
        routing = routing_report(ev, groups, pairs=pairs, seed=seed)
        details = {
            "n": self.sizes(data),
            "pairs": {k: [i, s] for k, (i, s) in self.config.all_pairs().items()},
            "shifts": scored.details,
        }
        result = DimensionResult(
            dimension=self.name,
            metrics=dict.fromkeys((*scored.items, *scored.estimates)),
            details=details,
            routing=routing,
            items=scored.items,
            estimates=scored.estimates,
        )
        return result.finalize(seed=seed)
