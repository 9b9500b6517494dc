"""Capped subsets that cover every group (`spread`)."""

from __future__ import annotations

from adamoe.data.splits import spread


def test_spread_covers_every_group_before_repeating_one() -> None:
    items = [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("c", 0), ("c", 1)]
    assert spread(items, 4, key=lambda x: x[0]) == [("a", 0), ("b", 0), ("c", 0), ("a", 1)]
    assert spread(items, None, key=lambda x: x[0]) == items
    assert spread(items, 5, key=lambda x: x[0]) == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("c", 1)]
