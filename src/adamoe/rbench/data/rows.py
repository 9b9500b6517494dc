"""Row plumbing shared by the bench's loaders: limits, required fields, clean text, file rows.

Empty data is always an error: a metric over zero items means nothing. Local files are read by
`adamoe.data.sources.read_rows` (.jsonl/.json/.csv/.parquet).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from adamoe.data.loaders import DataSourceError
from adamoe.data.sources import read_rows

T = TypeVar("T")

__all__ = [
    "DataSourceError",
    "check_limit",
    "clean_text",
    "file_rows",
    "finish",
    "required_field",
]


def check_limit(limit: int | None) -> None:
    """`limit` is None (all items) or a positive int."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit: expected a positive int or None, got {limit}")


def finish(items: list[T], where: str, limit: int | None) -> list[T]:
    """The first `limit` items; an empty set is an error naming `where`."""
    if not items:
        raise ValueError(f"{where}: no usable items (empty data)")
    return items if limit is None else items[:limit]


def file_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a local table file; a missing file is a one-line ValueError."""
    try:
        return read_rows(path)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None


def required_field(row: Mapping[str, Any], name: str, where: str) -> Any:
    """`row[name]`, or a one-line error naming the row and the fields it has."""
    if name not in row:
        raise ValueError(f"{where}: missing field {name!r} (fields: {', '.join(sorted(map(str, row)))})")
    return row[name]


def clean_text(value: Any) -> str:
    """A stripped string ('' for None)."""
    return "" if value is None else str(value).strip()
