"""Prompt formats: turn bench records into `MCExample`s (scored by log-likelihood) or prompts.

The wording is ours and deliberately plain ("Question: ... Answer:"), identical for dense and MoE
models, so differences in scores come from the models and not from the prompt.
"""

from __future__ import annotations

from adamoe.rbench.records import MCExample, OpenQAItem, SpanMCItem

__all__ = ["open_qa_prompt", "span_to_mc"]


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


def open_qa_prompt(item: OpenQAItem) -> str:
    """Q/A prompt for greedy generation of a short answer."""
    prefix = f"{item.context}\n" if item.context else ""
    return f"{prefix}Q: {item.question}\nA:"
