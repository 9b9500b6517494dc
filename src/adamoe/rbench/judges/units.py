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
    """Removes quoted speech from consecutive pieces of text: "…" or “…” (may span pieces) and '…' or
    ‘…’ (within one piece; an apostrophe inside or after a word, "can't", "parents'", is not a quote)."""

    def __init__(self) -> None:
        self.inside = False

    def _single(self, text: str, i: int, opened: bool) -> bool:
        """Whether the single quote mark at `i` opens (not `opened`) or closes (`opened`) a quotation."""
        prev = text[i - 1] if i else " "
        nxt = text[i + 1] if i + 1 < len(text) else " "
        if opened:
            return not prev.isspace() and not nxt.isalnum()
        return (prev.isspace() or prev in "([{:—–-") and nxt.isalpha()

    def strip(self, text: str) -> str:
        inside = self.inside
        out, single = self._strip(text, singles=True)
        if single:  # an opening mark never closed: it was an apostrophe after all
            self.inside = inside
            out, _ = self._strip(text, singles=False)
        return normalise(out)

    def _strip(self, text: str, *, singles: bool) -> tuple[str, bool]:
        out = []
        single = False
        for i, ch in enumerate(text):
            if ch == '"' or ch in "“”":
                self.inside = ch == "“" or (ch == '"' and not self.inside)
                out.append(" ")
            elif singles and ch in "'‘’" and not self.inside and self._single(text, i, single):
                single = not single
                out.append(" ")
            elif not (self.inside or single):
                out.append(ch)
        return "".join(out), single


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
