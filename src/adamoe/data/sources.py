"""Reading rows from local files and mapping user-named columns onto :class:`MCExample` fields.

Local files are the offline route for hub benchmarks: rows in the hub schema go through the task's
own mapping; any other layout is described with a ``columns`` mapping.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adamoe.data.examples import MCExample

__all__ = [
    "LOCAL_SUFFIXES",
    "ColumnMap",
    "DataSourceError",
    "coerce_label",
    "is_local_source",
    "is_native",
    "map_columns",
    "native_examples",
    "read_rows",
]

LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
ColumnMap = Mapping[str, str | Sequence[str]]
_COLUMN_KEYS = ("context", "choices", "label", "id", "continuation")
_REQUIRED_KEYS = ("context", "choices", "label")
_NATIVE_KEYS = frozenset(_REQUIRED_KEYS)


class DataSourceError(RuntimeError):
    """A source could not be read (hub unreachable, dataset missing); the message says what to do."""


def is_local_source(source: str | Path) -> bool:
    """A path (existing, or with a data-file suffix) rather than a hub dataset name."""
    path = Path(source)
    return path.exists() or path.suffix.lower() in LOCAL_SUFFIXES


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a .jsonl/.json/.csv/.parquet file as dicts (CSV values stay strings)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in LOCAL_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(LOCAL_SUFFIXES)}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if suffix == ".parquet":
        import pyarrow.parquet as pq  # datasets depends on pyarrow, so it is always there

        return pq.read_table(path).to_pylist()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return [dict(row) for row in csv.DictReader(fh)]
    text = path.read_text(encoding="utf-8")
    if suffix == ".json" and text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON line ({exc.msg})") from None
    if not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path}: expected one JSON object per row")
    return rows


def is_native(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Rows written by :func:`adamoe.data.export_task` (MCExample fields)."""
    return bool(rows) and set(rows[0]) >= _NATIVE_KEYS


def _check_columns(columns: ColumnMap, where: str) -> None:
    unknown = sorted(set(columns) - set(_COLUMN_KEYS))
    if unknown:
        raise ValueError(
            f"columns: unknown key(s) {', '.join(unknown)}; expected keys among {', '.join(_COLUMN_KEYS)}"
        )
    missing = [k for k in _REQUIRED_KEYS if k not in columns]
    if missing:
        raise ValueError(f"columns: missing key(s) {', '.join(missing)} needed to read {where}")


def _get(row: Mapping[str, Any], column: str, key: str, where: str) -> Any:
    if column not in row:
        raise ValueError(
            f"{where}: column {column!r} (columns[{key!r}]) not found; available: {', '.join(sorted(map(str, row)))}"
        )
    return row[column]


def _as_choice_list(value: Any, where: str, column: str) -> list[str]:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):  # list columns round-trip through CSV as JSON text
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                raise ValueError(
                    f"{where}: column {column!r} holds {value!r}, not a JSON list of choices"
                ) from None
        else:
            raise ValueError(
                f"{where}: column {column!r} is a single string; give a list column or several columns for choices"
            )
    if isinstance(value, Mapping) and "text" in value:  # hub style {"text": [...], "label": [...]}
        value = value["text"]
    if not isinstance(value, Sequence):
        raise ValueError(f"{where}: column {column!r} is {type(value).__name__}, expected a list of choices")
    return [str(v) for v in value]


def coerce_label(value: Any, choices: Sequence[str], where: str) -> int:
    """A label given as a 0-based index, a digit string, a choice's text, or a letter A, B, ..."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: label {value!r} is a bool, expected an index, a choice text or a letter")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    if text in choices:
        return list(choices).index(text)
    if text.lstrip("-").isdigit():
        return int(text)
    if len(text) == 1 and text.isalpha() and ord(text.upper()) - ord("A") < len(choices):
        return ord(text.upper()) - ord("A")
    raise ValueError(f"{where}: label {value!r} is neither an index, a choice text nor a letter A..")


def map_columns(
    rows: Sequence[Mapping[str, Any]], columns: ColumnMap, *, task: str, where: str
) -> list[MCExample]:
    """Build examples from rows with a user column mapping; choices may be one list column or several."""
    _check_columns(columns, where)
    out: list[MCExample] = []
    for i, row in enumerate(rows):
        spec = columns["choices"]
        if isinstance(spec, str):
            choices = _as_choice_list(_get(row, spec, "choices", where), where, spec)
        else:
            choices = [str(_get(row, col, "choices", where)) for col in spec]
        label = coerce_label(_get(row, str(columns["label"]), "label", where), choices, f"{where} row {i}")
        ident = _get(row, str(columns["id"]), "id", where) if "id" in columns else i
        cont = (
            _get(row, str(columns["continuation"]), "continuation", where)
            if "continuation" in columns
            else None
        )
        out.append(
            MCExample(
                id=f"{task}-{ident}",
                context=str(_get(row, str(columns["context"]), "context", where)),
                choices=choices,
                label=label,
                task=task,
                continuation=None if cont is None else str(cont),
            )
        )
    return out


def _as_scores(value: Any) -> list[float] | None:
    """Per-choice scores of an exported row; CSV keeps them as JSON text, empty means none."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else None
    return None if value is None else list(value)


def native_examples(rows: Sequence[Mapping[str, Any]], *, task: str | None, where: str) -> list[MCExample]:
    """Rows in our own export format; a CSV export stores choices as JSON text."""
    out = []
    for i, row in enumerate(rows):
        choices = _as_choice_list(row["choices"], where, "choices")
        fixed = {
            **row,
            "choices": choices,
            "label": coerce_label(row["label"], choices, f"{where} row {i}"),
            "continuation": row.get("continuation") or None,
            "scores": _as_scores(row.get("scores")),
        }
        out.append(MCExample.from_dict(fixed, task=task, index=i))
    return out
