import math

import pytest

from adamoe.rbench import metrics as M

# ---------------------------------------------------------------- closed-book QA


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


# ---------------------------------------------------------------- length-only reference


def test_length_only_prefers_the_shortest_choice():
    assert M.length_only(["yes", "certainly", "no"]) == [-3.0, -9.0, -2.0]
    scores = M.length_only(["long answer", "short"])
    assert scores.index(max(scores)) == 1


# ---------------------------------------------------------------- rates


def test_attack_success_rate_counts_only_clean_correct():
    clean = [True, True, True, False, False]
    adv = [True, False, False, False, True]  # last: wrong->right does not count
    assert M.attack_success_rate(clean, adv) == pytest.approx(2 / 3)
    assert math.isnan(M.attack_success_rate([False, False], [False, False]))
    with pytest.raises(ValueError, match="adv_correct"):
        M.attack_success_rate([True], [True, False])


def test_accuracy():
    assert M.accuracy([True, True, False, True]) == 0.75
    with pytest.raises(ValueError, match="correct"):
        M.accuracy([])
