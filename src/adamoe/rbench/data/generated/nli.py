"""NLI triples (premise, hypothesis, entailment/neutral/contradiction) with made-up names."""

from __future__ import annotations

import random

from adamoe.rbench.data.generated.common import COLOURS, check_n, title_name
from adamoe.rbench.records import NLIItem

__all__ = ["generate_nli"]

_OBJECTS = ("apples", "books", "letters", "coins", "candles", "shirts", "tickets", "stamps")
_PLACES = ("market", "station", "library", "harbour", "museum", "bakery")
_MONTHS = ("March", "June", "September", "December")


def _nli_frame(rng: random.Random) -> tuple[str, tuple[list[str], list[str], list[str]]]:
    a, b = title_name(rng), title_name(rng)
    while b == a:
        b = title_name(rng)
    kind = rng.randrange(3)
    if kind == 0:
        objs, place, k = rng.choice(_OBJECTS), rng.choice(_PLACES), rng.randint(2, 9)
        return f"{a} gave {b} {k} {objs} at the {place}.", (
            [f"{b} received {objs} from {a}.", f"{a} was at the {place}.", f"{a} gave away some {objs}."],
            [
                f"{b} had asked for the {objs} a week earlier.",
                f"{a} and {b} are cousins.",
                f"The {place} was crowded.",
            ],
            [f"{a} gave nothing to {b}.", f"{b} got no {objs} from {a}.", f"{a} never went to the {place}."],
        )
    if kind == 1:
        town, month, k = title_name(rng), rng.choice(_MONTHS), rng.randint(3, 12)
        return f"{a} visited {town} in {month} and stayed for {k} days.", (
            [
                f"{a} spent time in {town}.",
                f"{a} travelled to {town}.",
                f"{a} was away from home in {month}.",
            ],
            [
                f"{a} visited {town} for work.",
                f"{a} enjoyed the trip to {town}.",
                f"{a} went to {town} with {b}.",
            ],
            [
                f"{a} has never been to {town}.",
                f"{a} stayed in {town} for only an hour.",
                f"{a} was at home all of {month}.",
            ],
        )
    colour = rng.choice(COLOURS)
    return f"{a} bought a {colour} bicycle from {b} last spring.", (
        [f"{b} sold a bicycle to {a}.", f"{a} bought a bicycle.", f"{a} paid {b} for a bicycle."],
        [
            f"{a} rides the bicycle to work.",
            f"{b} sells bicycles for a living.",
            "The bicycle was expensive.",
        ],
        [
            f"{a} has never bought anything from {b}.",
            f"The bicycle {a} bought was not {colour}.",
            f"{b} gave {a} a car last spring.",
        ],
    )


def generate_nli(n: int = 60, *, seed: int = 0) -> list[NLIItem]:
    """Premise/hypothesis pairs, labels cycling entailment, neutral, contradiction."""
    check_n(n)
    rng = random.Random(f"nli:{seed}")
    items = []
    for i in range(n):
        premise, by_label = _nli_frame(rng)
        label = i % 3
        items.append(
            NLIItem(
                id=f"gen-nli-{i}",
                premise=premise,
                hypothesis=rng.choice(by_label[label]),
                label=label,
                source="generated",
            )
        )
    return items
