"""Prompt formats: turn bench records into `MCExample`s (scored by log-likelihood) or prompts.

The wording is ours and deliberately plain ("Question: ... Answer:"), identical for dense and MoE
models, so differences in scores come from the models and not from the prompt.
"""

from __future__ import annotations

from typing import Literal

from adamoe.rbench.records import MCExample, OpenQAItem, SpanMCItem, TruthfulQAItem

__all__ = ["open_qa_prompt", "span_to_mc", "truthfulqa_to_mc"]


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


def truthfulqa_to_mc(
    item: TruthfulQAItem, *, target: Literal["mc1", "mc2"] = "mc1", task: str = "truthfulqa"
) -> MCExample:
    """Q/A prompt with the target set's choices; `meta['labels']` keeps all 0/1 labels (MC2 has several trues)."""
    if target not in ("mc1", "mc2"):
        raise ValueError(f"target: expected 'mc1' or 'mc2', got {target!r}")
    targets = item.mc1 if target == "mc1" else item.mc2
    prefix = f"{item.context}\n" if item.context else ""
    return MCExample(
        id=f"{item.id}:{target}",
        context=f"{prefix}Q: {item.question}\nA:",
        choices=list(targets.choices),
        label=targets.labels.index(1),
        task=f"{task}-{target}",
        meta={"labels": list(targets.labels)},
    )


def open_qa_prompt(item: OpenQAItem) -> str:
    """Q/A prompt for greedy generation of a short answer."""
    prefix = f"{item.context}\n" if item.context else ""
    return f"{prefix}Q: {item.question}\nA:"
