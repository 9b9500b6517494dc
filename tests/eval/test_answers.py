"""Closed-book answer scoring against hand traces of the SQuAD recipe."""

import pytest

from adamoe.eval import answers as M


def test_normalize_answer_matches_hand_trace():
    # lower -> drop punctuation -> drop articles -> collapse spaces
    assert M.normalize_answer("The  Cat's hat!") == "cats hat"
    assert M.normalize_answer("An apple, a day") == "apple day"
    # articles only as whole words: "theory" keeps its "the"
    assert M.normalize_answer("Theory of an Era") == "theory of era"


def test_answer_match_needs_a_whole_word_gold_alias_and_abstention_is_recognised():
    assert M.answer_match("It was the Eiffel Tower.", ["Louvre", "Eiffel tower"]) == 1.0
    assert M.answer_match("Parisian", ["Paris"]) == 0.0  # not a whole word
    assert M.answer_match("anything", ["the"]) == 0.0  # a gold that normalises to nothing never matches
    with pytest.raises(ValueError, match="answers"):
        M.answer_match("a", "a")
    for text in ("", "  ", "I don't know.", "I\u2019m not sure", "Nobody knows that"):
        assert M.abstains(text)
    assert not M.abstains("Knowledge is power") and not M.abstains("Unsurely Rome")


def test_extract_answer_takes_the_first_line_before_a_new_question():
    assert M.extract_answer("\n  Paris. Q: and Rome?") == "Paris."
    assert M.extract_answer("Q: next\n Rome\nLondon") == "Rome"  # a line that is only a new turn is skipped
    assert M.extract_answer("") == ""
