"""Subsetting shared by the dimensions."""

from __future__ import annotations

import pytest

from adamoe.rbench.dimensions.base import spread

pytestmark = pytest.mark.usefixtures("one_thread")


def test_spread_covers_every_group_before_repeating_one() -> None:
    items = [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("c", 0), ("c", 1)]
    assert spread(items, 4, key=lambda x: x[0]) == [("a", 0), ("b", 0), ("c", 0), ("a", 1)]
    assert spread(items, None, key=lambda x: x[0]) == items
