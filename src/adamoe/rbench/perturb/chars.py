"""Character-level edits of one word: adjacent swap, deletion, insertion, homoglyph substitution.

Each operation takes a word and a random stream and returns the edited word, or None when the
operation cannot change that word.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping

__all__ = [
    "CHAR_KINDS",
    "CHAR_OPS",
    "HOMOGLYPHS",
    "delete_char",
    "homoglyph_substitute",
    "insert_char",
    "swap_adjacent",
]

# Latin letter -> visually confusable Cyrillic letter (code points checked by name in the tests).
HOMOGLYPHS: Mapping[str, str] = {
    "a": "\u0430",  # CYRILLIC SMALL LETTER A
    "c": "\u0441",  # CYRILLIC SMALL LETTER ES
    "e": "\u0435",  # CYRILLIC SMALL LETTER IE
    "h": "\u04bb",  # CYRILLIC SMALL LETTER SHHA
    "i": "\u0456",  # CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
    "j": "\u0458",  # CYRILLIC SMALL LETTER JE
    "o": "\u043e",  # CYRILLIC SMALL LETTER O
    "p": "\u0440",  # CYRILLIC SMALL LETTER ER
    "s": "\u0455",  # CYRILLIC SMALL LETTER DZE
    "x": "\u0445",  # CYRILLIC SMALL LETTER HA
    "y": "\u0443",  # CYRILLIC SMALL LETTER U
    "A": "\u0410",  # CYRILLIC CAPITAL LETTER A
    "B": "\u0412",  # CYRILLIC CAPITAL LETTER VE
    "C": "\u0421",  # CYRILLIC CAPITAL LETTER ES
    "E": "\u0415",  # CYRILLIC CAPITAL LETTER IE
    "H": "\u041d",  # CYRILLIC CAPITAL LETTER EN
    "I": "\u0406",  # CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I
    "J": "\u0408",  # CYRILLIC CAPITAL LETTER JE
    "K": "\u041a",  # CYRILLIC CAPITAL LETTER KA
    "M": "\u041c",  # CYRILLIC CAPITAL LETTER EM
    "O": "\u041e",  # CYRILLIC CAPITAL LETTER O
    "P": "\u0420",  # CYRILLIC CAPITAL LETTER ER
    "S": "\u0405",  # CYRILLIC CAPITAL LETTER DZE
    "T": "\u0422",  # CYRILLIC CAPITAL LETTER TE
    "X": "\u0425",  # CYRILLIC CAPITAL LETTER HA
}

CHAR_KINDS: tuple[str, ...] = ("swap", "delete", "insert", "homoglyph")


def swap_adjacent(word: str, rng: random.Random) -> str | None:
    """Swap two neighbouring, different characters; None if no swap changes the word."""
    spots = [i for i in range(len(word) - 1) if word[i] != word[i + 1]]
    if not spots:
        return None
    i = rng.choice(spots)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def delete_char(word: str, rng: random.Random) -> str | None:
    """Delete one character; None for one-letter words (deleting would remove the word)."""
    if len(word) < 2:
        return None
    i = rng.randrange(len(word))
    return word[:i] + word[i + 1 :]


def insert_char(word: str, rng: random.Random) -> str | None:
    """Insert one random ASCII letter (case follows the neighbouring character)."""
    i = rng.randrange(len(word) + 1)
    ch = rng.choice(string.ascii_lowercase)
    ref = word[i - 1] if i > 0 else word[0]
    if ref.isupper():
        ch = ch.upper()
    return word[:i] + ch + word[i:]


def homoglyph_substitute(word: str, rng: random.Random) -> str | None:
    """Replace one character with its look-alike from `HOMOGLYPHS`; None if no letter has one."""
    spots = [i for i, ch in enumerate(word) if ch in HOMOGLYPHS]
    if not spots:
        return None
    i = rng.choice(spots)
    return word[:i] + HOMOGLYPHS[word[i]] + word[i + 1 :]


CHAR_OPS: Mapping[str, Callable[[str, random.Random], str | None]] = {
    "swap": swap_adjacent,
    "delete": delete_char,
    "insert": insert_char,
    "homoglyph": homoglyph_substitute,
}
