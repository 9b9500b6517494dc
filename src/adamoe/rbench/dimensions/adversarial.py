"""Adversarial resilience on FIXED adversarial sets, built once on a surrogate and shared by every model.

As AdvGLUE builds its sets: each attack in `attacks` searches against the *surrogate* model (`surrogate`,
default the suite's first model: the fine-tuned dense SmolLM2) on the clean items' editable span
(`SpanMCItem.text`, e.g. the ARC/SciQ question, the RTE hypothesis; the template is never edited).
Default 'word': TextFooler-like ranked search (`perturb.attacks.ranked_attack`) over WordNet synonyms
scored by the surrogate's input embeddings (`SynonymNeighbours`), kept only when they pass the
label-preserving constraints of `perturb.constraints` and leave the span at most `max_fluency_drop` nats
less likely on its own (`_fluency`); budget `max_queries` = 60 queries per item. 'char': DeepWordBug-like
swap/delete/insert typos, greedy, ``1 + max_edits x max_positions x char kinds`` = 49 (`budget`).
Default tasks: those where the surrogate is clearly above chance (reference run, 20-25 test items each:
SciQ 85% and ARC-Easy 60% of 4 choices; RTE 56%, SST-2 44%, MRPC 16%, BoolQ 35% of 2, CB 45% of 3).
Only the edits that flip the surrogate are kept; they are frozen to
``<run cache>/adversarial/<attack>-<key>.json`` (atomic; `key` hashes the clean items, the attack settings
and the surrogate spec, so a resumed or later run reads the same set), and every model — the surrogate
included — is then scored on that one file. Metrics per attack: `adv_acc_<attack>`
(accuracy on the fixed set, chance beside it) and `drop_<attack>` (clean minus adversarial credit on the
same items, paired); on the surrogate the drop is 1 by construction, so read the other models.

Secondary check (`secondary`, default 'typo': one random-search typo per item, each model attacked on
its own): `robust_acc_<name>` and `asr_<name>` as before; its sets differ per model.
`per_source` caps each task and `--limit` the total, stratified over tasks. Routing drift: each fixed
set against the clean versions of the same items.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from adamoe.data.examples import MCExample
from adamoe.data.spans import SPAN_PATTERNS, SpanMCItem, load_span_task, span_to_mc
from adamoe.data.splits import spread
from adamoe.eval.estimates import ItemScores, group_estimates, item_scores, uniform_chance
from adamoe.eval.evaluator import ModelEvaluator
from adamoe.eval.routing_drift import routing_report
from adamoe.rbench.dimensions.base import DimensionResult
from adamoe.rbench.perturb.attacks import (
    WORD_KIND,
    AttackConfig,
    AttackResult,
    greedy_attack,
    mc_prediction,
    ranked_attack,
    summarise,
)
from adamoe.rbench.perturb.neighbours import EmbeddingNeighbours, SynonymNeighbours
from adamoe.utils.config import Config, option, require
from adamoe.utils.io import atomic_write_text

__all__ = ["AdversarialConfig", "AdversarialDimension", "audit", "budget"]

DEFAULT_ATTACKS: dict[str, dict[str, Any]] = {
    "word": {"kinds": [WORD_KIND], "search": "ranked", "word_source": "synonyms", "max_edits": 4, "max_edit_fraction": 0.2,
             "word_candidates": 6, "word_pool": 100, "min_similarity": 0.4, "max_fluency_drop": 2.0, "max_queries": 60},
    "char": {"kinds": ["swap", "delete", "insert"], "max_edits": 2, "max_edit_fraction": 0.3, "max_positions": 8},
}  # fmt: skip
DEFAULT_SECONDARY: dict[str, dict[str, Any]] = {
    "typo": {"kinds": ["swap", "homoglyph"], "max_edits": 1, "max_positions": 4}
}
_FORMAT = 1  # bump when a frozen set's content changes for the same key


def budget(cfg: AttackConfig) -> int | None:
    """Most log-likelihood queries one attacked item may cost (None when positions are unbounded)."""
    if cfg.search == "ranked":
        return cfg.max_queries
    if cfg.max_positions is None or cfg.max_edits is None:
        return None
    per_word = sum(cfg.word_candidates if k == WORD_KIND else cfg.char_samples for k in cfg.kinds)
    return 1 + cfg.max_edits * cfg.max_positions * per_word


@dataclass(kw_only=True)
class AdversarialConfig(Config):
    """Tasks, the surrogate, the attacks that build the fixed sets and the per-model secondary check."""

    section = "adversarial"
    tasks: list[str] = field(default_factory=lambda: ["arc_easy", "sciq"])
    per_source: int | None = option(25, ge=1)
    """Items per task (hash order); attacks query the surrogate many times per item."""
    surrogate: str = "first"
    """The model whose attacks build the fixed sets: 'first' = the suite's first model, or a model spec."""
    attacks: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_ATTACKS.items()}
    )
    secondary: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_SECONDARY.items()}
    )

    def check(self) -> None:
        bad = sorted(set(self.tasks) - set(SPAN_PATTERNS))
        require(
            bool(self.tasks) and not bad,
            f"{self._name('tasks')}: expected some of {sorted(SPAN_PATTERNS)}, got {self.tasks!r}",
        )
        both = sorted(set(self.attacks) & set(self.secondary))
        require(not both, f"{self._name('secondary')}: names {both} are also fixed attacks; rename them")
        for name in [*self.attacks, *self.secondary]:
            self.attack_config(name, seed=0)

    def attack_config(self, name: str, *, seed: int) -> AttackConfig:
        """The validated `AttackConfig` of attack `name` (fixed or secondary; its seed defaults to the run's)."""
        where = "attacks" if name in self.attacks else "secondary"
        spec = dict(getattr(self, where)[name] or {})
        if "kinds" in spec:
            kinds = spec["kinds"]
            spec["kinds"] = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        spec.setdefault("seed", seed)
        try:
            return AttackConfig.from_mapping(spec)
        except ValueError as exc:
            raise ValueError(f"{self._name(where)}.{name}: {exc}") from None


@dataclass(kw_only=True)
class AdversarialData:
    """Clean items (all tasks) and the fixed sets once built or read: '<cache root>:<key>' -> frozen record."""

    items: list[SpanMCItem]
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)


def _set_key(items: list[SpanMCItem], name: str, cfg: AttackConfig, surrogate: str) -> str:
    payload = [[it.id, it.prefix, it.text, it.suffix, it.label] for it in items]
    text = json.dumps(
        [_FORMAT, name, dataclasses.asdict(cfg), surrogate, payload], sort_keys=True, default=list
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class AdversarialDimension:
    """See the module docstring."""

    name = "adversarial"

    def __init__(self, config: AdversarialConfig | None = None, *, surrogate: str | None = None) -> None:
        self.config = config or AdversarialConfig()
        self.config.validate()
        self.surrogate = surrogate if surrogate is not None else self.config.surrogate

    def load(self, *, limit: int | None, seed: int) -> AdversarialData:
        items = [
            it for task in self.config.tasks for it in load_span_task(task, limit=self.config.per_source)
        ]
        return AdversarialData(items=spread(items, limit, key=lambda it: it.group))

    def sizes(self, data: AdversarialData) -> dict[str, int]:
        return {"clean": len(data.items)}

    def _attack(
        self, ev: ModelEvaluator, items: list[SpanMCItem], name: str, cfg: AttackConfig
    ) -> list[AttackResult]:
        """Attack every item against `ev`'s own verdicts; each result is cached per model and item."""
        neighbours = None
        if WORD_KIND in cfg.kinds:
            source = SynonymNeighbours if cfg.word_source == "synonyms" else EmbeddingNeighbours
            if f"neighbours:{cfg.word_source}" not in ev.extras:
                ev.extras[f"neighbours:{cfg.word_source}"] = source.from_model(ev.model, ev.tokenizer)
            neighbours = ev.extras[f"neighbours:{cfg.word_source}"]
        settings = json.dumps([name, "span", dataclasses.asdict(cfg)], sort_keys=True, default=list)
        results = []
        for it in items:
            payload = json.dumps([it.prefix, it.text, it.suffix, it.label, settings], ensure_ascii=False)
            hit = ev.lookup(self.name, f"attack:{name}", it.id, payload)
            if hit is None:
                ev.announce("attack", self.name, f"adversarial/{name}", [it.id])
                search = (
                    greedy_attack
                    if cfg.search == "greedy"
                    else partial(ranked_attack, fluency=_fluency(ev, it))
                )
                result = search(
                    it.text,
                    lambda t, it=it: mc_prediction(ev.query(span_to_mc(replace(it, text=t))), it.label),
                    config=cfg,
                    key=it.id,
                    neighbours=neighbours,
                )
                hit = {"id": it.id, "result": result.to_dict()}
                ev.remember(self.name, f"attack:{name}", it.id, payload, hit)
                ev.computed["attack"] += 1
            results.append(AttackResult.from_dict(hit["result"]))
        return results

    def _fixed(self, ev: ModelEvaluator, data: AdversarialData, name: str, seed: int) -> dict[str, Any]:
        """The frozen set of attack `name`: in memory, else its file, else built now on the surrogate.

        Kept per cache root; the surrogate (which runs first) rebuilds a set frozen by another version of
        itself (other weights, e.g. another fine-tuning recipe), every other model reads what is there.
        """
        cfg = self.config.attack_config(name, seed=seed)
        key = _set_key(data.items, name, cfg, self.surrogate)
        root = None if ev.cache_dir is None else ev.cache_dir.parent
        path = None if root is None else root / "adversarial" / f"{name}-{key}.json"
        record = data.fixed.get(f"{root}:{key}")
        if record is None and path is not None and path.is_file():
            record = json.loads(path.read_text())
        if record is not None and (ev.name != self.surrogate or record.get("fingerprint") == ev.fingerprint):
            data.fixed[f"{root}:{key}"] = record
            return record
        require(
            ev.name == self.surrogate,
            f"adversarial: the fixed {name!r} set is built on the surrogate {self.surrogate!r}, which has not "
            f"run; put it first in --model or set adversarial.surrogate",
        )
        try:
            results = self._attack(ev, data.items, name, cfg)
        except ValueError as exc:  # e.g. a byte-level tokenizer has no whole words to substitute
            record = {"attack": name, "surrogate": self.surrogate, "skipped": str(exc), "items": []}
            data.fixed[f"{root}:{key}"] = record | {"fingerprint": ev.fingerprint}
            return record
        report = summarise(results)
        record = {
            "format": _FORMAT,
            "key": key,
            "attack": name,
            "surrogate": self.surrogate,
            "fingerprint": ev.fingerprint,
            "settings": json.loads(json.dumps(dataclasses.asdict(cfg), default=list)),
            "query_budget": budget(cfg),
            "attacked": sum(r.clean_correct for r in results),
            "surrogate_clean_acc": report.clean_accuracy,
            "mean_queries": report.mean_queries,
            "items": [  # with the task and gold answer, so the frozen file alone can be hand-audited
                r.to_dict() | {"task": it.task, "gold": it.choices[it.label]}
                for it, r in zip(data.items, results)
                if r.success
            ],
        }
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(record, indent=1, ensure_ascii=False))
        data.fixed[f"{root}:{key}"] = record
        return record

    def _score_fixed(
        self, ev: ModelEvaluator, data: AdversarialData, clean: dict[str, float], name: str, seed: int
    ) -> tuple[dict[str, ItemScores], dict[str, Any], list[str]]:
        """Every model on the one frozen set: accuracy, paired drop from clean, and the details."""
        record = self._fixed(ev, data, name, seed)
        by_id = {it.id: it for it in data.items}
        adv = [replace(by_id[r["key"]], text=r["perturbed"]) for r in record["items"]]
        details = {k: v for k, v in record.items() if k not in ("items", "fingerprint")}
        details |= {"size": len(adv), "fixed": True}
        details["examples"] = audit(
            [AttackResult.from_dict(r).record() for r in record["items"][:5]], data.items
        )
        if not adv:
            return {}, details, []
        examples = [span_to_mc(it) for it in adv]
        credit = [
            ex.credit(r.pred) for ex, r in zip(examples, ev.score(self.name, f"adversarial/{name}", examples))
        ]
        ids = [it.id for it in adv]
        chance = uniform_chance(examples)
        items = {
            f"adv_acc_{name}": item_scores(ids, credit, chance=chance),
            f"drop_{name}": item_scores(ids, [clean[i] - c for i, c in zip(ids, credit)]),
        }
        details["by_group"] = group_estimates(
            ids, [by_id[i].group for i in ids], credit, seed=seed, where=name
        )
        return items, details, ids

    def _secondary(
        self, ev: ModelEvaluator, data: AdversarialData, name: str, seed: int
    ) -> tuple[dict[str, ItemScores], dict[str, Any]]:
        """A per-model attack (its own set per model): robust accuracy and success rate."""
        cfg = self.config.attack_config(name, seed=seed)
        results = self._attack(ev, data.items, name, cfg)
        report = summarise(results)
        hit = [(it.id, float(not r.adv_correct)) for it, r in zip(data.items, results) if r.clean_correct]
        examples = [span_to_mc(it) for it in data.items]
        chance = uniform_chance(examples)
        items = {
            f"robust_acc_{name}": item_scores(
                [it.id for it in data.items], [float(r.adv_correct) for r in results], chance=chance
            ),
            f"asr_{name}": item_scores([i for i, _ in hit], [s for _, s in hit]),
        }
        details = {
            **report.summary(),
            "fixed": False,
            "query_budget": budget(cfg),
            "examples": audit(report.samples(5), data.items),
        }
        return items, details

    def run(self, ev: ModelEvaluator, data: AdversarialData, *, seed: int) -> DimensionResult:
        examples = [span_to_mc(it) for it in data.items]
        records = ev.score(self.name, "adversarial/clean", examples)
        credit = [ex.credit(r.pred) for ex, r in zip(examples, records)]
        ids = [it.id for it in data.items]
        chance = uniform_chance(examples)
        items = {"clean_acc": item_scores(ids, credit, chance=chance)}
        details: dict[str, Any] = {
            "tasks": list(self.config.tasks),
            "n": len(ids),
            "surrogate": self.surrogate,
            "clean_by_group": group_estimates(
                ids, [it.group for it in data.items], credit, seed=seed, where="clean"
            ),
            "attacks": {},
        }
        groups: dict[str, tuple[str, Any]] = {"clean": ("adversarial/clean", None)}
        pairs: dict[str, str] = {}
        for name in self.config.attacks:
            scores, details["attacks"][name], adv_ids = self._score_fixed(
                ev, data, dict(zip(ids, credit)), name, seed
            )
            items.update(scores)
            if adv_ids:  # the attacked items against their own clean versions
                groups[name], groups[f"clean:{name}"] = (
                    (f"adversarial/{name}", None),
                    ("adversarial/clean", adv_ids),
                )
                pairs[name] = f"clean:{name}"
        for name in self.config.secondary:
            scores, details["attacks"][name] = self._secondary(ev, data, name, seed)
            items.update(scores)
        routing = routing_report(ev, groups, pairs=pairs, seed=seed)
        result = DimensionResult(
            dimension=self.name, metrics=dict.fromkeys(items), details=details, routing=routing, items=items
        )
        return result.finalize(seed=seed)


def _fluency(ev: ModelEvaluator, it: SpanMCItem) -> Callable[[Sequence[str]], tuple[float, ...]]:
    """Log-likelihood of span texts on their own (after the tokenizer's start token), all in one query: the
    fluency check. Not after the item's prefix: there, words copied from the premise are so predictable
    that any synonym of them loses several nats (RTE hypotheses)."""
    return lambda texts: ev.query(
        MCExample(id=it.id, context="", choices=list(texts), label=0, task=it.task), target_delimiter=""
    )


def audit(records: list[dict[str, Any]], items: list[SpanMCItem]) -> list[dict[str, Any]]:
    """Attack records with the choice names of the predictions before/after and the gold one, so a person
    can judge whether the perturbed text still deserves the gold label (the hand audit of a fixed set)."""
    by_id = {it.id: it for it in items}
    out = []
    for rec in records:
        it = by_id.get(rec["key"])
        names = {} if it is None else dict(enumerate(it.choices))
        gold = None if it is None else names[it.label]
        before, after = names.get(rec.get("clean_label")), names.get(rec.get("adv_label"))
        out.append({**rec, "gold": gold, "before": before, "after": after})
    return out
