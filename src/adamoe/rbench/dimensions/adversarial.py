"""Adversarial resilience: clean accuracy on NLI-style items, then greedy character- and word-level attacks.

Each named attack (default 'char': swap/delete/insert/homoglyph; 'word': substitutes from the
model's own input-embedding neighbours) is an `adamoe.rbench.perturb.attacks.AttackConfig` under an edit
budget, run by `attack_examples` against the model's own log-likelihood verdict on the item's editable
span (`SpanMCItem.text`: the hypothesis or claim; the task's instructions are never edited).
Deterministic under the seed. Each item's attack result is cached, so a resumed run does not search
again; the attacked set is then scored like the clean one, which gives the routing on attacked inputs.

Sources (`tasks`, items concatenated): an offline task of `data.offline.SPAN_PATTERNS` (default: RTE,
SST-2 and MRPC test parts, the GLUE tasks AdvGLUE attacks; lm-eval prompts, the span is the hypothesis /
sentence / second sentence), 'generated' (smoke NLI), 'anli' / 'anli:1,3' (facebook/anli test rounds),
'advglue' / 'advglue:mnli_mismatched' (hub), or a local NLI file. `per_source` caps each source and
`--limit` the total, both stratified over groups (task, ANLI round) so every group keeps items. Reports clean accuracy, robust accuracy and attack
success rate per attack, each per group too. A word attack is skipped (metrics "–", reason in details)
when the tokenizer has no whole-word tokens (e.g. byte-level test tokenizers).
Routing drift: clean items are the reference for each attacked set.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from adamoe.rbench.data.formats import nli_to_span, span_to_mc
from adamoe.rbench.data.generated import generate_nli
from adamoe.rbench.data.nli import ADVGLUE_NLI_TASKS, load_advglue, load_anli, load_nli_file
from adamoe.rbench.data.offline import SPAN_PATTERNS, load_span_task
from adamoe.rbench.dimensions.base import DimensionResult, spread
from adamoe.rbench.dimensions.tasks import group_estimates, item_chance
from adamoe.rbench.drift import routing_report
from adamoe.rbench.evaluator import ModelEvaluator
from adamoe.rbench.perturb.attacks import (
    WORD_KIND,
    AttackConfig,
    AttackResult,
    Edit,
    attack_examples,
    summarise,
)
from adamoe.rbench.perturb.neighbours import EmbeddingNeighbours
from adamoe.rbench.records import NLIItem, SpanMCItem
from adamoe.rbench.uncertainty import ItemScores, item_scores
from adamoe.utils.config import Config, option, require

__all__ = ["AdversarialConfig", "AdversarialDimension", "load_nli_source"]

DEFAULT_ATTACKS: dict[str, dict[str, Any]] = {
    "char": {"kinds": ["swap", "homoglyph"], "max_edits": 2, "max_positions": 3},
    "word": {"kinds": [WORD_KIND], "max_edits": 2, "max_positions": 3},
}
"""Sized for the default run's time budget: each greedy step tries at most 3 words x 2 kinds (one
query each), so an attacked item costs at most 1 + 2 x 6 queries (about 1 s each on a long item)."""


@dataclass(kw_only=True)
class AdversarialConfig(Config):
    """NLI source, attacked field and named attacks (each an `AttackConfig` mapping)."""

    section = "adversarial"
    tasks: list[str] = field(default_factory=lambda: ["rte", "sst2", "mrpc"])
    per_source: int | None = option(25, ge=1)
    """Items per source (stratified over its groups); attacks query the model many times per item."""
    n_generated: int = option(60, ge=1)
    text_field: str = option("hypothesis", choices=("hypothesis", "premise"))
    attacks: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_ATTACKS.items()}
    )

    def check(self) -> None:
        require(
            bool(self.tasks) and all(str(t).strip() for t in self.tasks),
            f"{self._name('tasks')}: expected a list of {sorted(SPAN_PATTERNS)}, 'generated', 'anli[:rounds]', "
            f"'advglue[:task]' or files, got {self.tasks!r}",
        )
        require(
            bool(self.attacks),
            f"{self._name('attacks')}: expected a non-empty mapping name -> attack settings",
        )
        for name in self.attacks:
            self.attack_config(name, seed=0)

    def attack_config(self, name: str, *, seed: int) -> AttackConfig:
        """The validated `AttackConfig` of attack `name` (its seed defaults to the run's)."""
        spec = dict(self.attacks[name] or {})
        if "kinds" in spec:
            kinds = spec["kinds"]
            spec["kinds"] = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        spec.setdefault("seed", seed)
        try:
            return AttackConfig.from_mapping(spec)
        except ValueError as exc:
            raise ValueError(f"{self._name('attacks')}.{name}: {exc}") from None


def load_nli_source(source: str, *, n_generated: int, seed: int) -> list[NLIItem]:
    """NLI items from a source string that is not an offline task (see the module docstring)."""
    if source == "generated":
        return generate_nli(n_generated, seed=seed)
    head, _, arg = source.partition(":")
    if head == "anli":
        rounds = tuple(int(r) for r in arg.replace("r", "").split(",") if r) if arg else (1, 2, 3)
        return load_anli(rounds=rounds)
    if head == "advglue":
        task = arg or "mnli"
        if task not in ADVGLUE_NLI_TASKS:
            raise ValueError(
                f"adversarial.nli: advglue task must be one of {list(ADVGLUE_NLI_TASKS)}, got {task!r}"
            )
        return load_advglue(task=task)
    return load_nli_file(source)


def load_span_items(
    sources: list[str], *, text_field: str, n_generated: int, per_source: int | None, seed: int
) -> list[SpanMCItem]:
    """Every source as span items, each capped at `per_source` (stratified over groups)."""
    items: list[SpanMCItem] = []
    for source in (str(s).strip() for s in sources):
        if source in SPAN_PATTERNS:
            loaded = load_span_task(source, limit=per_source)  # hash order: already a fixed sample
        else:
            loaded = [
                nli_to_span(it, field=text_field)
                for it in load_nli_source(source, n_generated=n_generated, seed=seed)
            ]
        items += spread(loaded, per_source, key=lambda it: it.group)
    return items


def _result_to_dict(r: AttackResult) -> dict[str, Any]:
    return dataclasses.asdict(r)


def _result_from_dict(d: Mapping[str, Any]) -> AttackResult:
    known = {f.name for f in dataclasses.fields(AttackResult)}
    fields = {k: v for k, v in d.items() if k in known}
    fields["edits"] = tuple(Edit(**e) for e in d["edits"])
    for name in ("protected", "rejected"):
        if name in fields:
            fields[name] = tuple(tuple(x) if isinstance(x, list) else x for x in fields[name])
    return AttackResult(**fields)


def _by_group(data: list[SpanMCItem], scores: list[float], *, seed: int, where: str) -> dict[str, Any]:
    """Interval estimate per group (task, ANLI round) when there are several."""
    return group_estimates(
        [it.id for it in data], [it.group or it.task for it in data], scores, seed=seed, where=where
    )


class AdversarialDimension:
    """See the module docstring."""

    name = "adversarial"

    def __init__(self, config: AdversarialConfig | None = None) -> None:
        self.config = config or AdversarialConfig()
        self.config.validate()

    def load(self, *, limit: int | None, seed: int) -> list[SpanMCItem]:
        cfg = self.config
        items = load_span_items(
            cfg.tasks,
            text_field=cfg.text_field,
            n_generated=cfg.n_generated,
            per_source=cfg.per_source,
            seed=seed,
        )
        return spread(items, limit, key=lambda it: it.group or it.task)

    def sizes(self, data: list[SpanMCItem]) -> dict[str, int]:
        return {"nli": len(data)}

    def _neighbours(self, ev: ModelEvaluator) -> EmbeddingNeighbours | str:
        """The model's embedding neighbours, or the reason a word attack cannot run on it."""
        if "neighbours" not in ev.extras:
            try:
                ev.extras["neighbours"] = EmbeddingNeighbours.from_model(ev.model, ev.tokenizer)
            except ValueError as exc:
                ev.extras["neighbours"] = str(exc)
        return ev.extras["neighbours"]

    def _attack(
        self, ev: ModelEvaluator, items: list[SpanMCItem], name: str, cfg: AttackConfig
    ) -> list[AttackResult]:
        neighbours = self._neighbours(ev) if WORD_KIND in cfg.kinds else None
        if isinstance(neighbours, str):
            raise _Skip(neighbours)
        settings = json.dumps([name, "span", dataclasses.asdict(cfg)], sort_keys=True, default=list)
        results = []
        for it in items:
            payload = json.dumps([it.prefix, it.text, it.suffix, it.label, settings], ensure_ascii=False)
            hit = ev.lookup(self.name, f"attack:{name}", it.id, payload)
            if hit is not None:
                results.append(_result_from_dict(hit["result"]))
                continue
            ev.announce("attack", self.name, f"adversarial/{name}", [it.id])
            report = attack_examples(
                [it],
                get_text=lambda x: x.text,
                set_text=lambda x, t: replace(x, text=t),
                score=lambda x: ev.predict(span_to_mc(x)),
                key=lambda x: x.id,
                config=cfg,
                neighbours=neighbours,
            )
            result = report.results[0]
            ev.remember(
                self.name, f"attack:{name}", it.id, payload, {"id": it.id, "result": _result_to_dict(result)}
            )
            ev.computed["attack"] += 1
            results.append(result)
        return results

    def _attack_items(
        self, data: list[SpanMCItem], results: list[AttackResult], name: str, chance: float
    ) -> dict[str, ItemScores]:
        """Robust accuracy over every item; success rate over the items the model had right."""
        ids = [it.id for it in data]
        hit = [(it.id, float(not r.adv_correct)) for it, r in zip(data, results) if r.clean_correct]
        return {
            f"robust_acc_{name}": item_scores(ids, [float(r.adv_correct) for r in results], chance=chance),
            f"asr_{name}": item_scores([i for i, _ in hit], [s for _, s in hit]),
        }

    def run(self, ev: ModelEvaluator, data: list[SpanMCItem], *, seed: int) -> DimensionResult:
        examples = [span_to_mc(it) for it in data]
        clean = ev.score(self.name, "adversarial/clean", examples)
        credit = [ex.credit(r.pred) for ex, r in zip(examples, clean)]
        chance = sum(item_chance(ex) for ex in examples) / len(examples)
        items = {"clean_acc": item_scores([it.id for it in data], credit, chance=chance)}
        metrics: dict[str, float | None] = {}
        details: dict[str, Any] = {
            "source": ", ".join(self.config.tasks),
            "n": len(data),
            "text_field": "span",
            "clean_by_group": _by_group(data, credit, seed=seed, where="adversarial/clean"),
            "attacks": {},
        }
        groups: dict[str, tuple[str, None]] = {"clean": ("adversarial/clean", None)}
        for name in self.config.attacks:
            cfg = self.config.attack_config(name, seed=seed)
            try:
                results = self._attack(ev, data, name, cfg)
            except _Skip as skip:
                metrics[f"robust_acc_{name}"] = metrics[f"asr_{name}"] = None
                details["attacks"][name] = {"skipped": str(skip), "kinds": list(cfg.kinds)}
                continue
            report = summarise(results)
            attacked = [replace(it, text=r.perturbed) for it, r in zip(data, results)]
            adv = ev.score(self.name, f"adversarial/{name}", [span_to_mc(it) for it in attacked])
            groups[name] = (f"adversarial/{name}", None)
            items.update(self._attack_items(data, results, name, chance))
            robust = [float(r.adv_correct) for r in results]
            details["attacks"][name] = {
                **report.summary(),
                "kinds": list(cfg.kinds),
                "rescored_accuracy": sum(r.correct for r in adv) / len(adv),
                "robust_by_group": _by_group(data, robust, seed=seed, where=f"adversarial/{name}"),
                "examples": _audit(report.samples(5), data),
            }
        routing = routing_report(ev, groups, clean="clean", seed=seed)
        metrics = {**{k: None for k in items}, **metrics}
        result = DimensionResult(
            dimension=self.name, metrics=metrics, details=details, routing=routing, items=items
        )
        return result.finalize(seed=seed)


def _audit(samples: list[dict[str, Any]], data: list[SpanMCItem]) -> list[dict[str, Any]]:
    """Attack records with the choice names of the predictions before/after and the gold one, so a
    person can judge whether the perturbed text still deserves the gold label."""
    by_id = {it.id: it for it in data}
    out = []
    for rec in samples:
        it = by_id.get(rec["key"])
        names = {} if it is None else dict(enumerate(it.choices))
        gold = None if it is None else names[it.label]
        before, after = names.get(rec.get("clean_label")), names.get(rec.get("adv_label"))
        out.append({**rec, "gold": gold, "before": before, "after": after})
    return out


class _Skip(Exception):
    """An attack that cannot run on this model (reason in the message)."""
