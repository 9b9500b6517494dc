"""Labelled texts (sentiment, one side of a BOSS-style ID/OOD pair) from the hub or local files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adamoe.rbench.data.rows import check_limit, clean_text, file_rows, finish, hub_rows, required_field
from adamoe.rbench.records import TextLabelItem

__all__ = ["load_text_label_file", "load_text_label_hub"]


def _text_label_rows(
    rows: Sequence[Mapping[str, Any]],
    where: str,
    *,
    text_field: str,
    label_field: str,
    label_names: Sequence[str],
    source: str,
) -> list[TextLabelItem]:
    if len(label_names) < 2:
        raise ValueError(f"label_names: expected at least 2 class names, got {list(label_names)}")
    lookup = {n.lower(): i for i, n in enumerate(label_names)}
    items = []
    for i, row in enumerate(rows):
        w = f"{where} row {i}"
        raw = required_field(row, label_field, w)
        if isinstance(raw, str) and raw.strip().lower() in lookup:
            label = lookup[raw.strip().lower()]
        else:
            try:
                label = int(raw)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{w}: expected label index or one of {list(label_names)}, got {raw!r}"
                ) from None
        if not 0 <= label < len(label_names):
            raise ValueError(f"{w}: label {label} outside 0..{len(label_names) - 1}")
        text = clean_text(required_field(row, text_field, w))
        if text:
            items.append(
                TextLabelItem(
                    id=clean_text(row.get("id")) or f"{source}-{i}",
                    text=text,
                    label=label,
                    label_names=tuple(label_names),
                    source=source,
                )
            )
    return items


def load_text_label_hub(
    path: str,
    *,
    config: str | None = None,
    split: str = "test",
    text_field: str = "text",
    label_field: str = "label",
    label_names: Sequence[str] = ("negative", "positive"),
    limit: int | None = None,
) -> list[TextLabelItem]:
    """A labelled-text set by hub name (e.g. one side of a BOSS-style ID/OOD pair)."""
    check_limit(limit)
    rows = hub_rows(path, config, split)
    items = _text_label_rows(
        rows, path, text_field=text_field, label_field=label_field, label_names=label_names, source=path
    )
    return finish(items, path, limit)


def load_text_label_file(
    path: str | Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    label_names: Sequence[str] = ("negative", "positive"),
    limit: int | None = None,
) -> list[TextLabelItem]:
    """Local labelled texts; labels as indices or class names."""
    check_limit(limit)
    items = _text_label_rows(
        file_rows(path),
        str(path),
        text_field=text_field,
        label_field=label_field,
        label_names=label_names,
        source=Path(path).stem,
    )
    return finish(items, str(path), limit)
