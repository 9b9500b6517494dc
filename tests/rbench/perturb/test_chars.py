"""Character edits of one word, checked by hand and against Unicode names."""

import random
import unicodedata

from adamoe.rbench.perturb import chars as C

# ---------------------------------------------------------------- character operations


def test_homoglyph_table_by_unicode_name():
    # hand-checked: each look-alike is the Cyrillic letter of the same shape
    expected = {
        "a": "CYRILLIC SMALL LETTER A",
        "c": "CYRILLIC SMALL LETTER ES",
        "e": "CYRILLIC SMALL LETTER IE",
        "o": "CYRILLIC SMALL LETTER O",
        "p": "CYRILLIC SMALL LETTER ER",
        "x": "CYRILLIC SMALL LETTER HA",
        "y": "CYRILLIC SMALL LETTER U",
        "B": "CYRILLIC CAPITAL LETTER VE",
        "H": "CYRILLIC CAPITAL LETTER EN",
        "P": "CYRILLIC CAPITAL LETTER ER",
    }
    for latin, name in expected.items():
        assert unicodedata.name(C.HOMOGLYPHS[latin]) == name
    for latin, glyph in C.HOMOGLYPHS.items():
        assert latin.isascii() and len(glyph) == 1 and not glyph.isascii()
        assert unicodedata.name(glyph).startswith("CYRILLIC")
        assert ("SMALL" in unicodedata.name(glyph)) == latin.islower()


def test_homoglyph_substitute_changes_exactly_one_mappable_char():
    rng = random.Random(0)
    for word in ["apple", "Phone", "scope", "Taxi"]:
        out = C.homoglyph_substitute(word, rng)
        diff = [i for i, (a, b) in enumerate(zip(word, out)) if a != b]
        assert len(out) == len(word) and len(diff) == 1
        assert out[diff[0]] == C.HOMOGLYPHS[word[diff[0]]]
    assert C.homoglyph_substitute("fun", rng) is None  # f, u, n have no entry


def test_char_ops_hand_checked_effects():
    rng = random.Random(1)
    for _ in range(20):
        out = C.swap_adjacent("abcd", rng)
        assert sorted(out) == list("abcd") and sum(a != b for a, b in zip(out, "abcd")) == 2
        d = C.delete_char("abcd", rng)
        assert len(d) == 3 and any("abcd"[:i] + "abcd"[i + 1 :] == d for i in range(4))
        ins = C.insert_char("abcd", rng)
        assert len(ins) == 5 and any(ins[:i] + ins[i + 1 :] == "abcd" for i in range(5))
    assert C.swap_adjacent("aa", rng) is None  # every swap would be invisible
    assert C.delete_char("a", rng) is None
    assert C.insert_char("ABC", random.Random(3)).isupper()
