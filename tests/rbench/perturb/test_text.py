"""Text plumbing shared by attacks and shifts: words, re-assembly, `match_case`, keyed streams."""

import pytest

from adamoe.rbench.perturb.text import keyed_rng, match_case, render, word_spans


@pytest.mark.parametrize(
    ("new", "old", "want"),
    [
        ("dog", "cat", "dog"),
        ("dog", "Cat", "Dog"),
        ("dog", "CAT", "DOG"),
        ("Paris", "city", "Paris"),  # lowercase old leaves new as written (proper noun keeps its capital)
        ("dog", "A", "Dog"),  # a one-letter capital counts as Title, not UPPER
        # phrases
        ("don't", "do not", "don't"),
        ("don't", "Do not", "Don't"),
        ("DON'T", "DO NOT", "DON'T"),  # already upper stays upper
        ("don't", "DO NOT", "DON'T"),
        ("i'm", "I am", "I'm"),
        ("i'm", "I AM", "I'M"),
        ("gonna", "Going to", "Gonna"),
        ("", "Cat", ""),
    ],
)
def test_match_case(new: str, old: str, want: str) -> None:
    assert match_case(new, old) == want


def test_words_render_and_keyed_streams() -> None:
    text = "It's 3 o'clock, Ana!"
    spans = word_spans(text)
    assert [text[s:e] for s, e in spans] == ["It", "s", "o", "clock", "Ana"]
    assert render(text, spans, ["IT", "S", "O", "CLOCK", "ANA"]) == "IT'S 3 O'CLOCK, ANA!"
    assert keyed_rng(0, "a").random() == keyed_rng(0, "a").random()
    assert keyed_rng(0, "a").random() != keyed_rng(0, "b").random()
