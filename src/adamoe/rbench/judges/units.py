"""A response cut into the units the three-way judge labels: sentences, list items and code blocks.

Why units: a refusal stops or points elsewhere, a compliance goes on to give steps, so the verdict
depends on what each part of the answer does (`threeway`), not on one phrase anywhere in it. Quoted
speech is removed from each unit's `unquoted` text, so a quoted refusal ("he said 'I can't'") is not one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adamoe.rbench.judges import cues
from adamoe.rbench.judges.base import normalise

__all__ = ["Unit", "split_units"]

_CODE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_SENTENCE = re.compile(r"(?<=[a-z0-9)\"'”][.!?])\s+(?=[A-Z\"“'(\[])|(?<=[.!?][\"”])\s+")


@dataclass(frozen=True)
class Unit:
    """One piece of a response: normalised text, the same without quoted speech, kind (sentence/item/code),
    and whether its list was introduced as alternatives."""

    text: str
    unquoted: str
    kind: str
    alt_list: bool = False


class _Quotes:
    """Removes quoted speech ("…" or “…”) from consecutive pieces of text; a quote may span pieces."""

    def __init__(self) -> None:
        self.inside = False

    def strip(self, text: str) -> str:
        out = []
        for ch in text:
            if ch == '"' or ch in "“”":
                self.inside = ch == "“" or (ch == '"' and not self.inside)
                out.append(" ")
            elif not self.inside:
                out.append(ch)
        return normalise("".join(out))


def split_units(response: str) -> list[Unit]:
    """Sentences, list items (flagged when the sentence before the list introduces alternatives) and code
    blocks of `response`, in order."""
    units: list[Unit] = []
    quotes = _Quotes()
    prose = _CODE.sub(lambda m: "\n@@CODE@@\n", response)
    intro_alt = False
    prev_item = False
    last_sentence = ""
    for line in prose.splitlines():
        if not line.strip():
            continue
        if line.strip() == "@@CODE@@":
            units.append(Unit(text="```", unquoted="```", kind="code"))
            continue
        if cues.LIST_ITEM.match(line):
            if not prev_item:
                intro_alt = (
                    cues.matches(cues.ALTERNATIVE, last_sentence) > 0 or "things that" in last_sentence
                )
            item = cues.LIST_ITEM.sub("", line)
            units.append(
                Unit(text=normalise(item), unquoted=quotes.strip(item), kind="item", alt_list=intro_alt)
            )
            prev_item = True
            continue
        prev_item = False
        for sent in _SENTENCE.split(line.strip()):
            if sent:
                last_sentence = normalise(sent)
                units.append(Unit(text=last_sentence, unquoted=quotes.strip(sent), kind="sentence"))
    return units
