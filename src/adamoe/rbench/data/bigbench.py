"""BIG-bench tasks for the reliability suite, read through `adamoe.data.bigbench` (offline, one loader).

Two views of a task's deterministic test split:
- `load_mc_task`: the task's own `MCExample`s (BIG-bench's zero-shot prompt, its choices and
  `target_scores` credit), scored as they are (hallucination, safety preference and bias tasks);
- `load_span_task`: `SpanMCItem`s whose editable span is the part an attack or a style shift may
  change (the hypothesis or claim of an NLI item, the sentence of an irony item), so the task's
  instructions and answer template stay intact. Only tasks with a pattern in `SPAN_PATTERNS`; items
  whose prompt does not match are left out (`load_span_task` says how many in its `dropped`).

`limit` keeps the first items in BIG-bench's hash order (a fixed shuffle spread over subtasks).
"""

from __future__ import annotations

import re

from adamoe.data.bigbench import load_bigbench
from adamoe.data.examples import MCExample
from adamoe.rbench.records import SpanMCItem

__all__ = ["SPAN_PATTERNS", "bigbench_spec", "load_mc_task", "load_span_task"]

PREFIX = "bigbench:"

SPAN_PATTERNS: dict[str, str] = {
    "vitaminc_fact_verification": r"\nClaim: (?P<span>.+?)\nTrue, False, or Neither\?$",
    "analytic_entailment": r"\nSentences: (?P<span>.+?)\nRelation:$",
    "epistemic_reasoning": r" Hypothesis: (?P<span>.+?)\nRelation:$",
    "presuppositions_as_nli": r"\nSentence 2: (?P<span>.+?)\n\nThe answer is:$",
    "irony_identification": r"\nExample: (?P<span>.+?)\nIronic/Not ironic\?$",
    "snarks": r"^Q: Which statement is sarcastic\? (?P<span>.+?)\nA:$",
}
"""Task -> regex with a `span` group over its BIG-bench prompt: the text attacks and shifts edit."""


def bigbench_spec(source: str) -> str:
    """'bigbench:<task>' (or a bare task name) -> the task spec."""
    return source.strip().removeprefix(PREFIX).strip("/")


def load_mc_task(source: str, *, limit: int | None = None, split: str = "test") -> list[MCExample]:
    """A BIG-bench task's split (default test) as `MCExample`s (`task` = 'bigbench:<spec>')."""
    examples = load_bigbench(bigbench_spec(source), split, limit)
    if not examples:
        raise ValueError(f"{source}: the {split} split has no items")
    return examples


def _span_item(ex: MCExample, pattern: re.Pattern[str]) -> SpanMCItem | None:
    m = pattern.search(ex.context)
    if m is None:
        return None
    start, end = m.span("span")
    return SpanMCItem(
        id=ex.id,
        text=ex.context[start:end],
        prefix=ex.context[:start],
        suffix=ex.context[end:],
        choices=tuple(ex.choices),
        label=ex.label,
        task=ex.task,
        scores=ex.scores,
        group=str(ex.meta.get("bigbench_spec", "")),
    )


def load_span_task(
    source: str, *, limit: int | None = None, split: str = "test"
) -> tuple[list[SpanMCItem], int]:
    """(items, dropped): a task's split with its editable span located; see the module docstring."""
    spec = bigbench_spec(source)
    task = spec.split("/")[0]
    if task not in SPAN_PATTERNS:
        raise ValueError(
            f"{source}: no span pattern for this task; expected one of "
            f"{', '.join(PREFIX + t for t in SPAN_PATTERNS)}"
        )
    pattern = re.compile(SPAN_PATTERNS[task], re.DOTALL)
    items, dropped = [], 0
    for ex in load_mc_task(spec, split=split):
        item = _span_item(ex, pattern)
        if item is None or not item.text.strip():
            dropped += 1
            continue
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise ValueError(f"{source}: no item matches the span pattern {SPAN_PATTERNS[task]!r}")
    return items, dropped
