"""Short reviews in three domains (product, restaurant, movie) for ID→OOD domain shifts."""

from __future__ import annotations

import random

from adamoe.rbench.data.generated.common import check_n
from adamoe.rbench.records import TextLabelItem

__all__ = ["SENTIMENT_DOMAINS", "generate_sentiment"]

SENTIMENT_DOMAINS: dict[str, dict[str, tuple[str, ...]]] = {
    "product": {
        "subjects": (
            "blender",
            "backpack",
            "desk lamp",
            "kettle",
            "phone case",
            "office chair",
            "pair of headphones",
        ),
        "pos_tail": ("I would buy it again", "it was worth every penny", "it works exactly as promised"),
        "neg_tail": ("I returned it after a week", "it broke within days", "I regret paying for it"),
    },
    "restaurant": {
        "subjects": ("soup", "pasta", "service", "dessert", "curry", "pizza", "breakfast"),
        "pos_tail": ("we will be back soon", "the staff made us feel welcome", "every plate came out hot"),
        "neg_tail": ("we left hungry and annoyed", "the wait was far too long", "we will not return"),
    },
    "movie": {
        "subjects": ("plot", "acting", "soundtrack", "ending", "script", "cast", "pacing"),
        "pos_tail": ("I would watch it again", "the whole audience clapped", "it stayed with me for days"),
        "neg_tail": ("I walked out halfway", "I nearly fell asleep", "it felt like a waste of an evening"),
    },
}
_POS_ADJ = ("excellent", "wonderful", "great", "delightful", "superb", "impressive", "lovely")
_NEG_ADJ = ("terrible", "awful", "disappointing", "dreadful", "poor", "mediocre", "dull")
_FRAMES = ("The {s} was {a}, and {t}.", "Honestly, the {s} is {a}; {t}.", "I found the {s} {a} and {t}.")


def generate_sentiment(n: int = 60, *, seed: int = 0, domain: str = "product") -> list[TextLabelItem]:
    """Short reviews in one domain; labels alternate negative (0) / positive (1)."""
    check_n(n)
    if domain not in SENTIMENT_DOMAINS:
        raise ValueError(f"domain: expected one of {sorted(SENTIMENT_DOMAINS)}, got {domain!r}")
    d = SENTIMENT_DOMAINS[domain]
    rng = random.Random(f"sentiment:{domain}:{seed}")
    items = []
    for i in range(n):
        label = i % 2
        adj = rng.choice(_POS_ADJ if label else _NEG_ADJ)
        tail = rng.choice(d["pos_tail"] if label else d["neg_tail"])
        text = rng.choice(_FRAMES).format(s=rng.choice(d["subjects"]), a=adj, t=tail)
        items.append(
            TextLabelItem(id=f"gen-sent-{domain}-{i}", text=text, label=label, source=f"generated-{domain}")
        )
    return items
