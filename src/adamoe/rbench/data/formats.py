"""Prompt formats: turn bench records into `MCExample`s (scored by log-likelihood) or prompts.

The wording is ours and deliberately plain ("Question: ... Answer:"), identical for dense and MoE
models, so differences in scores come from the models and not from the prompt.
"""

from __future__ import annotations

from typing import Literal

from adamoe.rbench.records import MCExample, NLIItem, OpenQAItem, SpanMCItem, TextLabelItem, TruthfulQAItem

__all__ = [
    "NLI_CHOICES",
    "nli_to_mc",
    "nli_to_span",
    "open_qa_prompt",
    "span_to_mc",
    "text_label_to_mc",
    "text_label_to_span",
    "truthfulqa_to_mc",
]

NLI_CHOICES: tuple[str, str, str] = ("True", "Neither", "False")
"""Answer words for labels 0 entailment, 1 neutral, 2 contradiction."""


def nli_to_span(
    item: NLIItem, *, task: str = "nli", field: Literal["hypothesis", "premise"] = "hypothesis"
) -> SpanMCItem:
    """Premise, then the hypothesis as a true/false/neither question; `field` is the editable span."""
    question = f"\nQuestion: {item.hypothesis} True, False or Neither?\nAnswer:"
    if field == "premise":
        prefix, text, suffix = "", item.premise, question
    elif field == "hypothesis":
        prefix, text, suffix = (
            f"{item.premise}\nQuestion: ",
            item.hypothesis,
            " True, False or Neither?\nAnswer:",
        )
    else:
        raise ValueError(f"field: expected 'hypothesis' or 'premise', got {field!r}")
    return SpanMCItem(
        id=item.id,
        text=text,
        prefix=prefix,
        suffix=suffix,
        choices=NLI_CHOICES,
        label=item.label,
        task=task,
        group=item.source,
    )


def nli_to_mc(item: NLIItem, *, task: str = "nli") -> MCExample:
    """Premise, then the hypothesis as a true/false/neither question."""
    return span_to_mc(nli_to_span(item, task=task))


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


def text_label_to_span(
    item: TextLabelItem,
    *,
    task: str = "sentiment",
    question: str = "Is the sentiment of this text positive or negative?",
) -> SpanMCItem:
    """A labelled text as an MC item whose span is the text."""
    return SpanMCItem(
        id=item.id,
        text=item.text,
        prefix="Text: ",
        suffix=f"\nQuestion: {question}\nAnswer:",
        choices=tuple(item.label_names),
        label=item.label,
        task=task,
        group=item.source,
    )


def text_label_to_mc(
    item: TextLabelItem,
    *,
    task: str = "sentiment",
    question: str = "Is the sentiment of this text positive or negative?",
) -> MCExample:
    """Text, a question about its class, the class names as choices."""
    return span_to_mc(text_label_to_span(item, task=task, question=question))


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
