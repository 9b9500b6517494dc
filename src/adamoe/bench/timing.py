"""How every benchmark times: rotated interleaved rounds, pinned threads, no garbage collection.

Why this method (issue 20): a ratio of two medians taken in different minutes measures the machine's
drift as much as the code. Here every candidate runs once per round, the order rotating from round to
round (so no candidate always runs right after the same neighbour, or first after the collector), and
the result keeps each round's samples in order so that callers can form **paired** per-round ratios
(:func:`adamoe.bench.paired.paired_ratio`). While timing, torch's intra-op thread count is pinned and
Python's cyclic garbage collector is off (it is run, untimed, between rounds), so neither a thread-pool
resize nor a collection pause lands inside one candidate's sample.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

__all__ = ["pinned", "rotation", "timed_rounds"]

Clock = Callable[[], float]


def rotation(names: Sequence[str], round_index: int) -> list[str]:
    """The order of round ``round_index``: ``names`` rotated left by ``round_index mod len(names)``.

    Over ``len(names)`` rounds every candidate runs once in every position.
    """
    if not names:
        return []
    k = round_index % len(names)
    return [*names[k:], *names[:k]]


@contextlib.contextmanager
def pinned(threads: int | None) -> Iterator[None]:
    """Inside the block: ``torch.set_num_threads(threads)`` (unless None) and the garbage collector off.

    Both are restored on exit, so a benchmark leaves the process as it found it.
    """
    before_threads, gc_was_on = torch.get_num_threads(), gc.isenabled()
    if threads is not None:
        torch.set_num_threads(threads)
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if gc_was_on:
            gc.enable()
        torch.set_num_threads(before_threads)


def timed_rounds(
    fns: dict[str, Callable[[], Any]],
    *,
    warmup: int,
    repeats: int,
    threads: int | None = None,
    clock: Clock = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds of one call of each function in each of ``repeats`` rounds: ``times[name][r]``.

    ``warmup`` untimed rounds first. Round ``r`` calls the functions in :func:`rotation` order ``r``;
    the whole run is inside :func:`pinned` (``threads``, no GC), with ``gc.collect()`` between rounds,
    outside the timed calls. ``clock`` is injectable so tests can check the bookkeeping without timing.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"timed_rounds: expected repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    with pinned(threads):
        for r in range(warmup):
            for name in rotation(names, r):
                fns[name]()
        for r in range(repeats):
            gc.collect()
            for name in rotation(names, r):
                t0 = clock()
                fns[name]()
                times[name].append(clock() - t0)
    return times
