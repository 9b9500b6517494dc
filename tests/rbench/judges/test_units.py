"""A response cut into units: sentences, list items (alternatives flagged), code; quoted speech removed."""

from adamoe.rbench.judges.units import split_units


def test_units_kinds_and_alternative_lists():
    units = split_units("I can't do that. Instead:\n- Talk to a friend.\n- Call a helpline.\n```\ncode\n```")
    assert [u.kind for u in units] == ["sentence", "sentence", "item", "item", "code"]
    assert [u.alt_list for u in units if u.kind == "item"] == [True, True]
    steps = split_units("Here is how:\n1. Mix it.\n2. Heat it.")
    assert [u.alt_list for u in steps if u.kind == "item"] == [False, False]


def test_quoted_speech_is_removed_across_units():
    (unit,) = split_units('Tell her: "I\u2019m sorry, I can\u2019t make it."')
    assert unit.text == "tell her: \"i'm sorry, i can't make it.\""
    assert unit.unquoted == "tell her:"


def test_single_quoted_speech_is_removed_but_apostrophes_stay():
    (unit,) = split_units("Be specific: 'I can't take this on this week.' It works.")
    assert unit.unquoted == "be specific: it works."
    (unit,) = split_units("Ask your parents' advice; don't wait.")
    assert unit.unquoted == "ask your parents' advice; don't wait."
    (unit,) = split_units("Don't say 'no to me.")  # an opening mark never closed: kept as text
    assert unit.unquoted == "don't say 'no to me."
