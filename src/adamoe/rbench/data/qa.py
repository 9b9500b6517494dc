"""TruthfulQA (MC1/MC2 targets) from the hub or a local file in the hub schema (optional; not offline)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adamoe.rbench.data.rows import check_limit, clean_text, file_rows, finish, hub_rows, required_field
from adamoe.rbench.records import MCTargets, TruthfulQAItem

__all__ = ["load_truthfulqa_file", "load_truthfulqa_hub"]


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
