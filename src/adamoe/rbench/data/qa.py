"""Question-answering sets: TruthfulQA (MC1/MC2 targets) and open-domain QA (NQ-open style), hub or file."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adamoe.rbench.data.rows import check_limit, clean_text, file_rows, finish, hub_rows, required_field
from adamoe.rbench.records import MCTargets, OpenQAItem, TruthfulQAItem

__all__ = ["load_open_qa_file", "load_open_qa_hub", "load_truthfulqa_file", "load_truthfulqa_hub"]

# ---------------------------------------------------------------- TruthfulQA


def _targets(value: Any, where: str) -> MCTargets:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                f"{where}: expected a {{choices, labels}} object, got unparseable text"
            ) from None
    if not isinstance(value, Mapping) or "choices" not in value or "labels" not in value:
        raise ValueError(f"{where}: expected a {{choices, labels}} object")
    try:
        return MCTargets(
            choices=tuple(str(c) for c in value["choices"]), labels=tuple(int(v) for v in value["labels"])
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _truthfulqa_rows(
    rows: Sequence[Mapping[str, Any]], where: str, limit: int | None
) -> list[TruthfulQAItem]:
    items = []
    for i, row in enumerate(rows):
        w = f"{where} row {i}"
        try:
            items.append(
                TruthfulQAItem(
                    id=clean_text(row.get("id")) or f"truthfulqa-{i}",
                    question=clean_text(required_field(row, "question", w)),
                    mc1=_targets(required_field(row, "mc1_targets", w), f"{w} mc1_targets"),
                    mc2=_targets(required_field(row, "mc2_targets", w), f"{w} mc2_targets"),
                    context=clean_text(row.get("context")),
                )
            )
        except ValueError as exc:
            raise ValueError(str(exc) if where in str(exc) else f"{w}: {exc}") from None
    return finish(items, where, limit)


def load_truthfulqa_hub(*, split: str = "validation", limit: int | None = None) -> list[TruthfulQAItem]:
    """TruthfulQA multiple_choice (fields question, mc1_targets, mc2_targets)."""
    check_limit(limit)
    rows = hub_rows("truthfulqa/truthful_qa", "multiple_choice", split)
    return _truthfulqa_rows(rows, "truthfulqa/truthful_qa (multiple_choice)", limit)


def load_truthfulqa_file(path: str | Path, *, limit: int | None = None) -> list[TruthfulQAItem]:
    """Rows in the hub schema: question, mc1_targets {choices, labels}, mc2_targets {choices, labels}."""
    check_limit(limit)
    return _truthfulqa_rows(file_rows(path), str(path), limit)


# ---------------------------------------------------------------- open-domain QA


def _answers(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                value = json.loads(s)
            except json.JSONDecodeError:
                raise ValueError(f"{where}: answers look like a JSON list but do not parse") from None
        else:
            value = [s]
    if not isinstance(value, Sequence):
        raise ValueError(f"{where}: expected a list of answer strings, got {type(value).__name__}")
    out = tuple(a for a in (clean_text(v) for v in value) if a)
    if not out:
        raise ValueError(f"{where}: expected at least one non-empty answer")
    return out


def _open_qa_rows(
    rows: Sequence[Mapping[str, Any]], where: str, question_field: str, answers_field: str, limit: int | None
) -> list[OpenQAItem]:
    items = []
    for i, row in enumerate(rows):
        w = f"{where} row {i}"
        q = clean_text(required_field(row, question_field, w))
        if q:
            items.append(
                OpenQAItem(
                    id=clean_text(row.get("id")) or f"openqa-{i}",
                    question=q,
                    answers=_answers(required_field(row, answers_field, w), w),
                    context=clean_text(row.get("context")),
                )
            )
    return finish(items, where, limit)


def load_open_qa_hub(
    *,
    path: str = "google-research-datasets/nq_open",
    config: str | None = None,
    split: str = "validation",
    question_field: str = "question",
    answers_field: str = "answer",
    limit: int | None = None,
) -> list[OpenQAItem]:
    """NQ-open by default (question, answer list); any hub set with a question and an answer list."""
    check_limit(limit)
    return _open_qa_rows(hub_rows(path, config, split), path, question_field, answers_field, limit)


def load_open_qa_file(
    path: str | Path,
    *,
    question_field: str = "question",
    answers_field: str = "answers",
    limit: int | None = None,
) -> list[OpenQAItem]:
    """Rows with a question and answers (a list, a JSON-list string, or one answer string)."""
    check_limit(limit)
    return _open_qa_rows(file_rows(path), str(path), question_field, answers_field, limit)
