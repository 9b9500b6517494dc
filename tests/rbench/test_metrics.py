import math

import pytest

from adamoe.rbench import metrics as M

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
