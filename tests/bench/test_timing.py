"""The timing method's bookkeeping, driven by a fake clock (nothing here is timed)."""

from __future__ import annotations

import gc
import itertools

import pytest
import torch

from adamoe.bench.timing import pinned, rotation, timed_rounds


def test_rotation_by_hand():
    names = ["a", "b", "c"]
    assert [rotation(names, r) for r in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]
    assert rotation([], 3) == []


def test_every_candidate_takes_every_position_over_len_rounds():
    names = list("abcd")
    positions = {n: {rotation(names, r).index(n) for r in range(len(names))} for n in names}
    assert all(p == set(range(len(names))) for p in positions.values())


def test_timed_rounds_calls_in_rotated_order_and_books_each_call_to_its_round():
    order: list[str] = []
    ticks = itertools.count()
    now = [0.0]
    cost = {"a": 1.0, "b": 10.0, "c": 100.0}

    def make(name):
        def fn():
            order.append(name)
            now[0] += cost[name] * (1 + len(order))  # a different duration for every call

        return fn

    def clock():
        next(ticks)
        return now[0]

    times = timed_rounds({n: make(n) for n in "abc"}, warmup=1, repeats=3, clock=clock)
    assert order == list("abc") + list("abc") + list("bca") + list("cab")  # warm-up round 0, then 0, 1, 2
    # the call at position p (1-based in ``order``) lasted cost * (1 + p)
    expected = {n: [] for n in "abc"}
    for p, name in enumerate(order[3:], start=4):
        expected[name].append(cost[name] * (1 + p))
    assert times == expected


def test_timed_rounds_pins_threads_and_disables_gc_only_while_timing():
    seen = []
    before = torch.get_num_threads()
    gc_before = gc.isenabled()
    timed_rounds(
        {"x": lambda: seen.append((torch.get_num_threads(), gc.isenabled()))}, warmup=0, repeats=2, threads=1
    )
    assert seen == [(1, False), (1, False)]
    assert torch.get_num_threads() == before and gc.isenabled() == gc_before


def test_pinned_restores_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), pinned(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before and gc.isenabled()


def test_bad_rounds_are_refused():
    with pytest.raises(ValueError, match="repeats >= 1"):
        timed_rounds({"x": lambda: None}, warmup=0, repeats=0)
