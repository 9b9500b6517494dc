"""Prompt formats: turn bench span records into `MCExample`s (scored by log-likelihood).

The wording is ours and deliberately plain ("Question: ... Answer:"), identical for dense and MoE
models, so differences in scores come from the models and not from the prompt.
"""

from __future__ import annotations

from adamoe.rbench.records import MCExample, SpanMCItem

__all__ = ["span_to_mc"]


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
