"""What the generators share: the item-count check, made-up names, a colour list."""

from __future__ import annotations

import random

from adamoe.data.synthetic import made_up_name

COLOURS = ("green", "blue", "red", "yellow", "white", "black", "orange", "purple")


def check_n(n: int) -> None:
    """A generated set needs at least one item."""
    if n < 1:
        raise ValueError(f"n: expected a positive number of items, got {n}")


def title_name(rng: random.Random) -> str:
    """A made-up capitalised name (town, person, river) drawn from `rng`."""
    return made_up_name(rng).capitalize()
