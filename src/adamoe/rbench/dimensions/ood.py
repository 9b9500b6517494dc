"""OOD robustness: accuracy on in-distribution (ID) sets, on style-shifted copies of them, and on other
data sets of the same kind of task (BOSS-style ID→OOD pairs); the gap of each.

Default pairs (real data, offline, test parts): entailment — RTE (ID) → CB; science QA — ARC-Easy
(ID) → ARC-Challenge. The main pair is `id` + `sets`, more pairs go in `pairs`
({name: {id: ..., sets: [...]}}). Sources: an offline task of `data.offline.SPAN_PATTERNS` (lm-eval
prompts; the span is the hypothesis / sentence / question), 'generated[:domain]' (our sentiment reviews,
smoke data), a local file, or {hub: <path>, ...} / {file: <path>, ...} (see `load_text_label_source`).

Style shifts (`adamoe.rbench.perturb.shifts`) edit the ID items' span only (the task's template stays),
so ID and shifted items are paired by id. A shift that changes fewer than `min_changed` of the items
is marked a no-op and left out of `ood_acc_mean` and the gaps (it would only dilute them).

Gaps compare chance-normalised accuracy, (credit − chance) / (1 − chance) per item, so a 3-way OOD
set is not "harder" than a 2-way ID set merely by its chance level: style shifts by a paired
difference on the same items, data sets by an unpaired bootstrap. `gap_mean` pools every counted
OOD item against every ID item; `gap_max` is the largest per-shift gap (with that shift's interval).

Evaluate-only by default; `finetune: true` first fine-tunes a copy of the model on a separate ID
training set with `adamoe.train.train` (settings in `train`, TrainConfig fields).
Routing drift: the ID items are the clean reference for every shifted set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamoe.rbench.data.formats import span_to_mc, text_label_to_span
from adamoe.rbench.data.generated import SENTIMENT_DOMAINS, generate_sentiment
from adamoe.rbench.data.labelled import load_text_label_file, load_text_label_hub
from adamoe.rbench.data.offline import SPAN_PATTERNS, load_span_task
from adamoe.rbench.dimensions.base import DimensionResult, take
from adamoe.rbench.dimensions.ood_scores import OODData, ood_scores
from adamoe.rbench.drift import routing_report
from adamoe.rbench.evaluator import ModelEvaluator
from adamoe.rbench.perturb.shifts import SHIFT_KINDS, ShiftConfig, default_shifts
from adamoe.rbench.records import SpanMCItem, TextLabelItem
from adamoe.utils.config import Config, option, require

__all__ = ["OODConfig", "OODData", "OODDimension", "load_text_label_source"]

TrainFn = Callable[..., Any]
TRAIN_SEED_OFFSET = 1000  # the fine-tuning set is generated with another seed than the evaluated one

DEFAULT_QUESTION = "Is the sentiment of this text positive or negative?"


@dataclass(kw_only=True)
class OODConfig(Config):
    """ID set, other data sets, style shifts and the optional fine-tuning of the OOD dimension."""

    section = "ood"
    id: str | dict[str, Any] = "rte"
    sets: list[str | dict[str, Any]] = field(default_factory=lambda: ["cb"])
    pairs: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"science": {"id": "arc_easy", "sets": ["arc_challenge"]}}
    )
    set_limit: int | None = option(60, ge=1)
    """Items per set (hash order, a fixed sample); `--limit` lowers it further."""
    shifts: str | list[str | dict[str, Any]] | None = "default"
    min_changed: float = option(0.5, ge=0.0, le=1.0)
    """A style shift that changes fewer than this share of the items is a no-op: marked, not counted."""
    n_generated: int = option(60, ge=1)
    question: str = DEFAULT_QUESTION
    finetune: bool = False
    train: dict[str, Any] = field(default_factory=dict)
    train_source: str | dict[str, Any] | None = None
    train_n: int = option(200, ge=1)

    def check(self) -> None:
        self.shift_configs(seed=0)
        for name, pair in self.pairs.items():
            require(
                isinstance(pair, dict) and "id" in pair and set(pair) <= {"id", "sets"},
                f"{self._name('pairs')}.{name}: expected {{id: <source>, sets: [<source>, ...]}}, got {pair!r}",
            )
        if self.finetune:
            from adamoe.train import TrainConfig

            TrainConfig.from_dict({"progress": False, "trainable": "full", **dict(self.train)})

    def shift_configs(self, *, seed: int) -> list[ShiftConfig]:
        """The configured style shifts ('default', 'none' or a list of kinds / ShiftConfig mappings)."""
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


def _source_name(spec: str | Mapping[str, Any]) -> str:
    if isinstance(spec, Mapping):
        if spec.get("name"):
            return str(spec["name"])
        where = str(spec.get("hub") or spec.get("file") or "set")
        return Path(where).stem if "file" in spec else where.rsplit("/", 1)[-1]
    if spec.startswith("generated"):
        return spec.partition(":")[2] or "product"
    return spec if spec in SPAN_PATTERNS else Path(spec).stem


def load_text_label_source(
    spec: str | Mapping[str, Any], *, n_generated: int, seed: int
) -> list[TextLabelItem]:
    """'generated[:domain]', a local file, or {hub: ..., ...} / {file: ..., ...} (see module docstring)."""
    if isinstance(spec, str):
        if spec.startswith("generated"):
            domain = spec.partition(":")[2] or "product"
            if domain not in SENTIMENT_DOMAINS:
                raise ValueError(
                    f"ood: generated domain must be one of {sorted(SENTIMENT_DOMAINS)}, got {domain!r}"
                )
            return generate_sentiment(n_generated, seed=seed, domain=domain)
        return load_text_label_file(spec)
    if not isinstance(spec, Mapping):
        raise ValueError(f"ood: expected a source string or mapping, got {spec!r}")
    allowed = {"name", "hub", "file", "config", "split", "text_field", "label_field", "label_names"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"ood source: unknown key(s) {unknown}; expected some of {sorted(allowed)}")
    kwargs = {k: spec[k] for k in ("text_field", "label_field") if k in spec}
    if "label_names" in spec:
        kwargs["label_names"] = tuple(spec["label_names"])
    if "hub" in spec:
        return load_text_label_hub(
            str(spec["hub"]), config=spec.get("config"), split=str(spec.get("split", "test")), **kwargs
        )
    if "file" in spec:
        return load_text_label_file(str(spec["file"]), **kwargs)
    raise ValueError(f"ood source: expected a 'hub' or 'file' key, got {sorted(spec)}")


def load_span_source(
    spec: str | Mapping[str, Any],
    *,
    n_generated: int,
    seed: int,
    question: str,
    limit: int | None,
    split: str = "test",
) -> list[SpanMCItem]:
    """Any OOD source as span items: offline tasks directly, labelled texts through their text."""
    if isinstance(spec, str) and spec in SPAN_PATTERNS:
        return load_span_task(spec, limit=limit, split=split)
    items = load_text_label_source(spec, n_generated=n_generated, seed=seed)
    return take([text_label_to_span(it, question=question) for it in items], limit)


class OODDimension:
    """See the module docstring."""

    name = "ood"

    def __init__(self, config: OODConfig | None = None, *, train_fn: TrainFn | None = None) -> None:
        self.config = config or OODConfig()
        self.config.validate()
        self.train_fn = train_fn

    def _pairs(self) -> dict[str, tuple[Any, list[Any]]]:
        """{pair name: (ID source, other sources)}; the main pair is named after its ID source."""
        cfg = self.config
        pairs = {_source_name(cfg.id): (cfg.id, list(cfg.sets))}
        for name, pair in cfg.pairs.items():
            if name in pairs:
                raise ValueError(f"ood.pairs: pair name {name!r} is taken by the main pair; rename it")
            pairs[name] = (pair["id"], list(pair.get("sets") or []))
        return pairs

    def _source(self, spec: Any, limit: int | None, seed: int, split: str = "test") -> list[SpanMCItem]:
        cfg = self.config
        return load_span_source(
            spec, n_generated=cfg.n_generated, seed=seed, question=cfg.question, limit=limit, split=split
        )

    def load(self, *, limit: int | None, seed: int) -> OODData:
        cfg = self.config
        caps = [c for c in (limit, cfg.set_limit) if c is not None]
        cap = min(caps) if caps else None
        id_items: list[SpanMCItem] = []
        id_pair: dict[str, str] = {}
        sets: dict[str, list[SpanMCItem]] = {}
        set_pair: dict[str, str] = {}
        for pair, (id_spec, others) in self._pairs().items():
            for it in self._source(id_spec, cap, seed):
                id_items.append(it)
                id_pair[it.id] = pair
            for spec in others:
                name = f"data:{_source_name(spec)}"
                if name in sets:
                    raise ValueError(f"ood.sets: two sets are named {name!r}; give one a 'name'")
                sets[name], set_pair[name] = self._source(spec, cap, seed), pair
        train_items: list[SpanMCItem] = []
        if cfg.finetune:
            src = cfg.train_source if cfg.train_source is not None else cfg.id
            train_seed = seed + TRAIN_SEED_OFFSET
            if isinstance(src, str) and src in SPAN_PATTERNS:
                train_items = self._source(src, cfg.train_n, train_seed, split="train")
            else:
                train_items = load_span_source(
                    src, n_generated=cfg.train_n, seed=train_seed, question=cfg.question, limit=cfg.train_n
                )
        return OODData(
            id_items=id_items,
            id_pair=id_pair,
            sets=sets,
            set_pair=set_pair,
            shifts=cfg.shift_configs(seed=seed),
            train_items=train_items,
        )

    def sizes(self, data: OODData) -> dict[str, int]:
        return {"id": len(data.id_items), **{k: len(v) for k, v in data.sets.items()}}

    def _finetune(self, ev: ModelEvaluator, data: OODData, seed: int) -> ModelEvaluator:
        from adamoe.train import TrainConfig

        train_fn = self.train_fn
        if train_fn is None:
            from adamoe.train import train as train_fn
        tcfg = TrainConfig.from_dict(
            {"progress": False, "trainable": "full", **dict(self.config.train), "seed": seed}
        )
        return ev.finetuned(
            tag="ood-ft",
            train_fn=train_fn,
            train_pairs=[span_to_mc(it) for it in data.train_items],
            train_config=tcfg,
            dimension=self.name,
        )

    def run(self, ev: ModelEvaluator, data: OODData, *, seed: int) -> DimensionResult:
        if self.config.finetune:
            ev = self._finetune(ev, data, seed)
        scored = ood_scores(ev, self.name, data, min_changed=self.config.min_changed, seed=seed)
        groups = {"id": ("ood/id", None), **{k: (f"ood/{k}", None) for k in scored.details}}
        routing = routing_report(ev, groups, clean="id", seed=seed)
        details = {
            "n": self.sizes(data),
            "finetuned": self.config.finetune,
            "pairs": {k: [str(v[0]), [str(x) for x in v[1]]] for k, v in self._pairs().items()},
            "shifts": scored.details,
        }
        result = DimensionResult(
            dimension=self.name,
            metrics={k: None for k in (*scored.items, *scored.estimates)},
            details=details,
            routing=routing,
            items=scored.items,
            estimates=scored.estimates,
        )
        return result.finalize(seed=seed)
