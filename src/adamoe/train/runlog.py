"""The training run's JSONL logs: one record per line, appended as steps finish, cut back on resume."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adamoe.utils.io import atomic_write_text

__all__ = ["append_jsonl", "truncate_jsonl"]


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append `record` as one JSON line and flush, so a killed run keeps every finished step."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()


def truncate_jsonl(path: Path, *, keep_through: int) -> None:
    """Keep the records of steps <= ``keep_through`` (a killed run may have logged past its checkpoint,
    and may have died mid-line). A missing file is left missing."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and int(record.get("step", 0)) <= keep_through:
            kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))
