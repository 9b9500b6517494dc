"""Hallucination: BIG-bench truthfulness tasks, TruthfulQA MC1/MC2 and open-domain QA (EM / F1).

Default (real data, offline): the BIG-bench tasks in `tasks` — truthful_qa (its MC1 task), known_unknowns,
misconceptions, fact_checker — scored by log-likelihood (`dimensions.tasks`), one `acc_<task>` each.
Optional sets (off by default, 'none'): TruthfulQA MC1/MC2 items from 'generated' (our made-up-fact
smoke set, the `--quick` default), 'hub' (truthfulqa/truthful_qa multiple_choice) or a file; open QA
from 'generated', 'hub' (google-research-datasets/nq_open), 'hub:<path>' or a file.

The open-QA answer is the first line of the greedy continuation of "Q: ... A:" (a plain prompt by
default, `chat: auto` to use the chat template), cut before a following "Q:".
Routing drift: questions grounded in a stated fact (the generated set's even items) are the clean
reference for unanswerable ones (no fact given, the truthful answer admits ignorance); a set
without both kinds reports routing per stage only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adamoe.rbench.data.formats import open_qa_prompt, truthfulqa_to_mc
from adamoe.rbench.data.generated import generate_open_qa, generate_truthfulness_mc
from adamoe.rbench.data.qa import (
    load_open_qa_file,
    load_open_qa_hub,
    load_truthfulqa_file,
    load_truthfulqa_hub,
)
from adamoe.rbench.dimensions.base import CHAT_CHOICES, DimensionResult, take
from adamoe.rbench.dimensions.tasks import load_tasks, score_tasks
from adamoe.rbench.drift import routing_report
from adamoe.rbench.evaluator import ModelEvaluator
from adamoe.rbench.metrics import exact_match, mc1_correct, mc2_score, token_f1
from adamoe.rbench.records import MCExample, OpenQAItem, TruthfulQAItem
from adamoe.rbench.uncertainty import ItemScores, item_scores
from adamoe.utils.config import Config, option, require

__all__ = ["HallucinationConfig", "HallucinationData", "HallucinationDimension", "extract_answer"]


DEFAULT_TASKS = (
    "bigbench:truthful_qa",
    "bigbench:known_unknowns",
    "bigbench:misconceptions",
    "bigbench:fact_checker",
)


@dataclass(kw_only=True)
class HallucinationConfig(Config):
    """Sources and generation settings of the hallucination dimension."""

    section = "hallucination"
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    task_limit: int | None = option(80, ge=1)
    """Items per BIG-bench task (hash order); `--limit` lowers it further."""
    truthfulqa: str = "none"
    open_qa: str = "none"
    n_generated: int = option(60, ge=1)
    max_new_tokens: int = option(16, ge=1)
    chat: bool | str = option(False, choices=CHAT_CHOICES)

    def check(self) -> None:
        for name in ("truthfulqa", "open_qa"):
            value = getattr(self, name)
            require(
                value.strip() != "",
                f"{self._name(name)}: expected 'none', 'generated', 'hub' or a file path, got {value!r}",
            )


@dataclass(kw_only=True)
class HallucinationData:
    """The BIG-bench tasks, TruthfulQA and open-QA items, loaded once, and their sources."""

    tasks: dict[str, list[MCExample]]
    truthfulqa: list[TruthfulQAItem]
    open_qa: list[OpenQAItem]
    sources: dict[str, str]


def extract_answer(text: str) -> str:
    """First non-empty line of a continuation, cut before a following 'Q:' turn."""
    for line in text.splitlines():
        line = line.split("Q:", 1)[0].strip()
        if line:
            return line
    return ""


class HallucinationDimension:
    """See the module docstring."""

    name = "hallucination"

    def __init__(self, config: HallucinationConfig | None = None) -> None:
        self.config = config or HallucinationConfig()
        self.config.validate()

    def load(self, *, limit: int | None, seed: int) -> HallucinationData:
        cfg = self.config
        tqa, oqa = _load_truthfulqa(cfg, seed), _load_open_qa(cfg, seed)
        caps = [c for c in (limit, cfg.task_limit) if c is not None]
        return HallucinationData(
            tasks=load_tasks(cfg.tasks, limit=min(caps) if caps else None),
            truthfulqa=take(tqa, limit),
            open_qa=take(oqa, limit),
            sources={"tasks": ", ".join(cfg.tasks), "truthfulqa": cfg.truthfulqa, "open_qa": cfg.open_qa},
        )

    def sizes(self, data: HallucinationData) -> dict[str, int]:
        sizes = {name: len(items) for name, items in data.tasks.items()}
        if data.truthfulqa:
            sizes["truthfulqa"] = len(data.truthfulqa)
        if data.open_qa:
            sizes["open_qa"] = len(data.open_qa)
        return sizes

    def _truthfulqa(self, ev: ModelEvaluator, items: Sequence[TruthfulQAItem]) -> dict[str, ItemScores]:
        """MC1 (0/1 per item) and MC2 (true-choice probability mass per item)."""
        r1 = ev.score(self.name, "hallucination/mc1", [truthfulqa_to_mc(it, target="mc1") for it in items])
        r2 = ev.score(self.name, "hallucination/mc2", [truthfulqa_to_mc(it, target="mc2") for it in items])
        ids = [it.id for it in items]
        return {
            "mc1": item_scores(
                ids,
                [mc1_correct(r.loglikelihoods, it.mc1.labels) for r, it in zip(r1, items)],
                chance=float(np.mean([1 / len(it.mc1.choices) for it in items])),
            ),
            "mc2": item_scores(
                ids,
                [mc2_score(r.loglikelihoods, it.mc2.labels) for r, it in zip(r2, items)],
                chance=float(np.mean([sum(it.mc2.labels) / len(it.mc2.labels) for it in items])),
            ),
        }

    def _open_qa(self, ev: ModelEvaluator, items: Sequence[OpenQAItem]) -> tuple[dict[str, ItemScores], list]:
        texts = ev.generate(
            self.name,
            "hallucination/open-qa",
            [(it.id, open_qa_prompt(it)) for it in items],
            max_new_tokens=self.config.max_new_tokens,
            chat=self.config.chat,
        )
        preds = [extract_answer(t) for t in texts]
        ids = [it.id for it in items]
        scores = {
            "em": item_scores(ids, [exact_match(p, it.answers) for p, it in zip(preds, items)]),
            "f1": item_scores(ids, [token_f1(p, it.answers) for p, it in zip(preds, items)]),
        }
        examples = [
            {"question": it.question, "answers": list(it.answers), "prediction": p}
            for it, p in list(zip(items, preds))[:3]
        ]
        return scores, examples

    def run(self, ev: ModelEvaluator, data: HallucinationData, *, seed: int) -> DimensionResult:
        items, task_details = score_tasks(ev, self.name, data.tasks, seed=seed)
        details: dict[str, Any] = {"sources": data.sources, "n": self.sizes(data), "tasks": task_details}
        groups: dict[str, tuple[str, Sequence[str] | None]] = {
            name.removeprefix("bigbench:"): (f"hallucination/{name.removeprefix('bigbench:')}", None)
            for name in data.tasks
        }
        clean, compare = None, []
        if data.truthfulqa:
            items.update(self._truthfulqa(ev, data.truthfulqa))
            details["mc1_by_kind"] = self._mc1_by_kind(items["mc1"], data.truthfulqa)
            grounded = [f"{it.id}:mc1" for it in data.truthfulqa if it.context]
            ungrounded = [f"{it.id}:mc1" for it in data.truthfulqa if not it.context]
            if grounded and ungrounded:
                groups["grounded"] = ("hallucination/mc1", grounded)
                groups["unanswerable"] = ("hallucination/mc1", ungrounded)
                clean, compare = "grounded", ["unanswerable"]
            else:
                groups["truthfulqa"] = ("hallucination/mc1", None)
        if data.open_qa:
            scores, details["examples"] = self._open_qa(ev, data.open_qa)
            items.update(scores)
            groups["open-qa"] = ("hallucination/open-qa", None)
        routing = routing_report(ev, groups, clean=clean, compare=compare, seed=seed)
        metrics: dict[str, float | None] = {name: None for name in items}
        result = DimensionResult(
            dimension=self.name, metrics=metrics, details=details, routing=routing, items=items
        )
        return result.finalize(seed=seed)

    @staticmethod
    def _mc1_by_kind(mc1: ItemScores, items: Sequence[TruthfulQAItem]) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for kind, want in (("grounded", True), ("unanswerable", False)):
            hits = [s for s, it in zip(mc1["scores"], items) if bool(it.context) == want]
            out[kind] = sum(hits) / len(hits) if hits else None
        return out


def _load_truthfulqa(cfg: HallucinationConfig, seed: int) -> list[TruthfulQAItem]:
    if cfg.truthfulqa == "none":
        return []
    if cfg.truthfulqa == "generated":
        return generate_truthfulness_mc(cfg.n_generated, seed=seed)
    if cfg.truthfulqa == "hub":
        return load_truthfulqa_hub()
    return load_truthfulqa_file(cfg.truthfulqa)


def _load_open_qa(cfg: HallucinationConfig, seed: int) -> list[OpenQAItem]:
    if cfg.open_qa == "none":
        return []
    if cfg.open_qa == "generated":
        return generate_open_qa(cfg.n_generated, seed=seed)
    if cfg.open_qa == "hub":
        return load_open_qa_hub()
    if cfg.open_qa.startswith("hub:"):
        return load_open_qa_hub(path=cfg.open_qa.split(":", 1)[1])
    return load_open_qa_file(cfg.open_qa)
