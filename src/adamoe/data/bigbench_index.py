"""Reading BIG-bench task JSON straight out of the PyPI sdist, without installing or importing ``bigbench``.

Why a tarball reader: the ``bigbench`` package drags TensorFlow in, but its sdist (``bigbench==1.0.0``,
358 MB) holds every JSON task as plain files under ``bigbench-1.0.0/bigbench/benchmark_tasks/``. A gzip
stream cannot seek, so reading one member costs a decompression up to its offset (seconds for late
members) and listing the tasks costs one pass over all 1.75 GB of JSON. Hence two small caches beside
the tarball, both keyed on the tarball's size and mtime so a replaced tarball invalidates them:

- ``<tarball>.index.json``: one summary per JSON task (member offset, example counts, choice counts,
  prompt prefixes and lengths, description, keywords), built in one pass (~1 min, once);
- ``<tarball>.tasks/<spec>.json``: the multiple-choice examples of a task, written the first time it is
  loaded so later loads skip the tarball.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import sys
import tarfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adamoe.data.sources import DataSourceError
from adamoe.paths import cache_root
from adamoe.utils.io import atomic_save_json, atomic_write_text

__all__ = [
    "FETCH_COMMAND",
    "SDIST_NAME",
    "SDIST_SIZE",
    "bigbench_index",
    "format_prompt",
    "item_key",
    "mc_examples",
    "tarball_path",
]

SDIST_NAME = "bigbench-1.0.0.tar.gz"
SDIST_SIZE = 358_249_635  # bytes of the PyPI sdist; setup.sh checks the same figure
FETCH_COMMAND = (
    "bash scripts/setup.sh (or: pip download --no-deps --no-binary :all: bigbench==1.0.0 -d {dir})"
)
_ROOT = "bigbench/benchmark_tasks/"
_TASK_FILE = re.compile(r"^(?P<task>[^/]+)/(?:(?P<sub>[^/]+)/task\.json|task(?:_(?P<variant>[^/]+))?\.json)$")
_INDEX_VERSION = 4
_PERMUTATION_SEED = 42  # BIG-bench's default ``random_seed`` when formatting JSON tasks
_MEMO: dict[tuple[str, int, int], dict[str, Any]] = {}


def tarball_path() -> Path:
    """Where the sdist lives: ``<cache>/bigbench/bigbench-1.0.0.tar.gz`` (cache: ``$ADAMOE_CACHE`` or
    ``~/.cache/adamoe``); raises a one-line :class:`DataSourceError` with the fetch command if absent."""
    path = cache_root() / "bigbench" / SDIST_NAME
    if not path.is_file():
        raise DataSourceError(
            f"BIG-bench data: {path} not found; fetch it once (358 MB) with "
            + FETCH_COMMAND.format(dir=path.parent)
        )
    return path


def _key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def spec_of(member: str) -> str | None:
    """Task spec of a task JSON member path relative to ``benchmark_tasks/``, or None.

    ``t/task.json`` -> ``t``; ``t/s/task.json`` -> ``t/s``; ``t/task_mc.json`` -> ``t/mc``.
    """
    match = _TASK_FILE.match(member)
    if match is None:
        return None
    tail = match["sub"] or match["variant"]
    return f"{match['task']}/{tail}" if tail else match["task"]


def _relative(name: str) -> str | None:
    """``t/s/task.json`` from ``bigbench-1.0.0/bigbench/benchmark_tasks/t/s/task.json``."""
    _, sep, tail = name.partition("/" + _ROOT)
    return tail if sep else None


def mc_items(examples: Any) -> tuple[list[dict[str, Any]], int]:
    """The usable multiple-choice examples (``input`` + ``target_scores`` with >= 2 choices and a best
    choice scoring above the worst, as BIG-bench requires) and the number of MC examples dropped."""
    items, dropped = [], 0
    for ex in examples if isinstance(examples, list) else []:
        scores = ex.get("target_scores") if isinstance(ex, Mapping) else None
        if not isinstance(scores, Mapping):
            continue
        values = [float(v) for v in scores.values()]
        if len(values) < 2 or max(values) <= min(values) or not isinstance(ex.get("input"), str):
            dropped += 1
            continue
        items.append({"input": ex["input"], "target_scores": {str(k): float(v) for k, v in scores.items()}})
    return items, dropped


def format_prompt(text: str, choices: Sequence[str], fmt: Mapping[str, Any]) -> str:
    """BIG-bench's zero-shot prompt for one example, as lm-eval's ``bigbench_*`` tasks see it.

    ``task_prefix + input_prefix + input [+ choice_prefix + choice ...] + output_prefix``, stripped
    (BIG-bench's ``json_task.default_format_fn`` and its seqio bridge, whose ``inputs`` lm-eval reads;
    the seqio pipeline strips inputs, and the scorer adds lm-eval's " " before each choice). The listed
    choices are the sorted choices permuted by ``numpy.random.RandomState(42)``, re-seeded per example
    exactly as BIG-bench does, so every n-choice item lists its sorted choices in the same order.
    """
    body = text
    if fmt["append_choices"]:
        listed = sorted(choices)
        body += fmt["choice_prefix"] + fmt["choice_prefix"].join(listed[i] for i in _permutation(len(listed)))
    return (fmt["task_prefix"] + fmt["input_prefix"] + body + fmt["output_prefix"]).strip()


@functools.cache
def _permutation(n: int) -> tuple[int, ...]:
    """BIG-bench's listing order for n sorted choices (the RNG is re-seeded per example, so it is fixed)."""
    return tuple(int(i) for i in np.random.RandomState(_PERMUTATION_SEED).permutation(n))


def item_key(text: str, choices: Sequence[str]) -> str:
    """A stable identity of an item (sha1 of its input and sorted choices, joined by U+001E), independent
    of file order."""
    return hashlib.sha1("\x1e".join([text, *sorted(choices)]).encode("utf-8")).hexdigest()


def _format_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """The task's prompt settings with BIG-bench's defaults."""
    return {
        "task_prefix": str(data.get("task_prefix", "")),
        "input_prefix": str(data.get("example_input_prefix", "\nQ: ")),
        "output_prefix": str(data.get("example_output_prefix", "\nA: ")),
        "choice_prefix": str(data.get("choice_prefix", "\n  choice: ")),
        "append_choices": bool(data.get("append_choices_to_input", True)),
    }


def _summary(data: Mapping[str, Any]) -> dict[str, Any]:
    """Per-task facts for listing and choosing tasks (no examples kept)."""
    listed, dropped = mc_items(data.get("examples"))
    distinct: dict[str, dict[str, Any]] = {}
    for it in listed:  # duplicates counted once, as BIG-bench drops them
        distinct.setdefault(item_key(it["input"], list(it["target_scores"])), it)
    items = list(distinct.values())
    n_choices = [len(it["target_scores"]) for it in items]
    best = [max(it["target_scores"].values()) for it in items]
    n_best = [sum(v == b for v in it["target_scores"].values()) for it, b in zip(items, best)]
    fractional = any(v not in (0.0, 1.0) for it in items for v in it["target_scores"].values())
    sample = "".join(it["input"] + "".join(it["target_scores"]) for it in items[:200])
    fmt = _format_of(data)
    lengths = sorted(
        len(format_prompt(it["input"], list(it["target_scores"]), fmt))
        + 1
        + max(map(len, it["target_scores"]))
        for it in items
    )
    return {
        "name": str(data.get("name", "")),
        "description": str(data.get("description", ""))[:400],
        "keywords": [str(k) for k in data.get("keywords", [])],
        "metrics": [str(m) for m in data.get("metrics", [])],
        "preferred_score": str(data.get("preferred_score", "")),
        "n_examples": len(data.get("examples") or []),
        "n_mc": len(listed),
        "n_dropped": dropped,
        "n_distinct": len(items),
        "n_multi_gold": sum(n > 1 for n in n_best),
        "fractional_scores": fractional,
        "choices_min": min(n_choices, default=0),
        "choices_max": max(n_choices, default=0),
        "chars_p50": lengths[len(lengths) // 2] if lengths else 0,
        "chars_p95": lengths[int(0.95 * (len(lengths) - 1))] if lengths else 0,
        "chars_max": lengths[-1] if lengths else 0,
        "ascii_share": round(sum(c.isascii() for c in sample) / max(1, len(sample)), 3),
        "format": fmt,
    }


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a damaged or truncated tarball into one line saying how to replace it."""
    try:
        yield
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataSourceError(
            f"BIG-bench data: {path} is not a readable sdist ({type(exc).__name__}: {exc}); delete it and "
            + FETCH_COMMAND.format(dir=path.parent)
        ) from exc


def _scan(path: Path) -> dict[str, Any]:
    """One streaming pass over the tarball: a summary of every JSON task."""
    print(
        f"adamoe: indexing {path.name} once (one pass over 1.75 GB of JSON, about a minute)", file=sys.stderr
    )
    tasks: dict[str, dict[str, Any]] = {}
    with _reading(path), tarfile.open(path, "r|gz") as tar:
        for member in tar:
            rel = _relative(member.name) if member.isfile() else None
            if rel is None:
                continue
            spec = spec_of(rel)
            if spec is None:
                continue
            try:
                data = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
            except ValueError:
                continue
            if isinstance(data, Mapping):
                tasks[spec] = {"member": member.name, "offset": member.offset_data, "size": member.size}
                tasks[spec].update(_summary(data))
    return tasks


def bigbench_index() -> dict[str, dict[str, Any]]:
    """Every JSON task in the tarball by spec (``task``, ``task/subtask``), from the cached index."""
    path = tarball_path()
    key = _key(path)
    if key in _MEMO:
        return _MEMO[key]
    index_file = path.with_name(path.name + ".index.json")
    stamp = {"version": _INDEX_VERSION, "size": key[1], "mtime_ns": key[2]}
    tasks = None
    if index_file.is_file():
        try:
            cached = json.loads(index_file.read_text(encoding="utf-8"))
            tasks = cached["tasks"] if cached.get("stamp") == stamp else None
        except (ValueError, KeyError, TypeError):
            tasks = None
    if tasks is None:
        tasks = _scan(path)
        atomic_save_json(index_file, {"stamp": stamp, "tasks": tasks}, indent=1)
    _MEMO[key] = tasks
    return tasks


def _read_member(path: Path, info: Mapping[str, Any]) -> Any:
    """Decode one member by its recorded offset: decompresses up to it, reads only its bytes."""
    member = tarfile.TarInfo(info["member"])
    member.size, member.offset_data, member.type = int(info["size"]), int(info["offset"]), tarfile.REGTYPE
    with _reading(path), tarfile.open(path, "r:gz") as tar:
        handle = tar.extractfile(member)
        if handle is None:
            raise DataSourceError(f"BIG-bench data: {info['member']} unreadable in {path}")
        return json.loads(handle.read())


def mc_examples(spec: str) -> list[dict[str, Any]]:
    """The multiple-choice examples of one task spec, from the per-task cache or the tarball."""
    path = tarball_path()
    info = bigbench_index()[spec]
    key = _key(path)
    cache = path.with_name(path.name + ".tasks") / f"{spec.replace('/', '__')}.json"
    stamp = {"size": key[1], "mtime_ns": key[2], "member": info["member"]}
    if cache.is_file():
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if cached.get("stamp") == stamp:
                return cached["examples"]
        except (ValueError, KeyError, TypeError):
            pass
    items, _ = mc_items(_read_member(path, info).get("examples"))
    # No sort_keys: the order of target_scores is the order of the choices.
    atomic_write_text(cache, json.dumps({"stamp": stamp, "examples": items}, ensure_ascii=False))
    return items


def iter_specs(index: Mapping[str, Mapping[str, Any]]) -> Iterator[str]:
    """Specs with at least one usable multiple-choice example, sorted."""
    return iter(sorted(s for s, info in index.items() if info.get("n_mc", 0) > 0))
