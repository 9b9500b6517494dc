import math

import pytest

from adamoe.rbench import metrics as M

# ---------------------------------------------------------------- open QA


def test_normalize_answer_matches_hand_trace():
    # lower -> drop punctuation -> drop articles -> collapse spaces
    assert M.normalize_answer("The  Cat's hat!") == "cats hat"
    assert M.normalize_answer("An apple, a day") == "apple day"
    # articles only as whole words: "theory" keeps its "the"
    assert M.normalize_answer("Theory of an Era") == "theory of era"


def test_exact_match_takes_any_gold():
    assert M.exact_match("the Eiffel Tower.", ["Louvre", "Eiffel tower"]) == 1.0
    assert M.exact_match("Eiffel", ["Eiffel tower"]) == 0.0


def test_token_f1_hand_computed():
    # pred [big, red, barn]; gold [red, barn, in, field]: overlap 2, P=2/3, R=1/2 -> F1 = 4/7
    assert M.token_f1("big red barn", ["red barn in the field"]) == pytest.approx(4 / 7)
    # max over golds
    assert M.token_f1("big red barn", ["field", "red barn in the field"]) == pytest.approx(4 / 7)
    # duplicates counted with multiplicity: [x,x,y] vs [x,y,y] -> overlap 2, P=R=2/3
    assert M.token_f1("x x y", ["x y y"]) == pytest.approx(2 / 3)
    # both normalise to empty -> 1; one empty -> 0
    assert M.token_f1("the", ["a"]) == 1.0
    assert M.token_f1("the", ["cat"]) == 0.0


def test_open_qa_scores_mean_and_errors():
    out = M.open_qa_scores(["Paris", "big red barn"], [["paris"], ["red barn in the field"]])
    assert out["em"] == pytest.approx(0.5)
    assert out["f1"] == pytest.approx((1 + 4 / 7) / 2)
    with pytest.raises(ValueError, match="predictions"):
        M.open_qa_scores(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError, match="answers"):
        M.exact_match("a", "a")


# ---------------------------------------------------------------- TruthfulQA


def test_mc1_argmax_and_ties():
    assert M.mc1_correct([-1.0, -2.0, -0.5], [0, 0, 1]) is True
    assert M.mc1_correct([-1.0, -2.0, -0.5], [0, 1, 0]) is False
    # a tie goes to the first of the tied choices (lm-eval's argmax convention)
    assert M.mc1_correct([-1.0, -1.0], [1, 0]) is True
    assert M.mc1_correct([-1.0, -1.0], [0, 1]) is False
    assert M.mc1_correct([-2.0, -1.0, -1.0], [0, 1, 0]) is True
    with pytest.raises(ValueError, match="exactly one"):
        M.mc1_correct([-1.0, -2.0, -3.0], [1, 1, 0])


def test_mc2_normalised_mass_hand_computed():
    assert M.mc2_score([math.log(0.5), math.log(0.3), math.log(0.2)], [1, 0, 1]) == pytest.approx(0.7)
    # unnormalised: p = [1, 3] -> true mass 1/4
    assert M.mc2_score([0.0, math.log(3.0)], [1, 0]) == pytest.approx(0.25)
    # very small log-likelihoods must not underflow to 0/0
    assert M.mc2_score([-1000.0, -1000.0 + math.log(3.0)], [1, 0]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="loglikelihoods"):
        M.mc2_score([0.0], [1, 0])


def test_truthfulqa_scores_average():
    mc1 = [([-1.0, -2.0], [1, 0]), ([-1.0, -2.0], [0, 1])]
    mc2 = [([0.0, math.log(3.0)], [1, 0]), ([0.0, 0.0], [1, 0])]
    out = M.truthfulqa_scores(mc1, mc2)
    assert out["mc1"] == pytest.approx(0.5)
    assert out["mc2"] == pytest.approx((0.25 + 0.5) / 2)


# ---------------------------------------------------------------- rates


def test_attack_success_rate_counts_only_clean_correct():
    clean = [True, True, True, False, False]
    adv = [True, False, False, False, True]  # last: wrong->right does not count
    assert M.attack_success_rate(clean, adv) == pytest.approx(2 / 3)
    assert math.isnan(M.attack_success_rate([False, False], [False, False]))
    with pytest.raises(ValueError, match="adv_correct"):
        M.attack_success_rate([True], [True, False])


def test_rates_and_gap():
    assert M.refusal_rate([True, False, False, True]) == 0.5
    assert M.accuracy([True, True, False, True]) == 0.75
    assert M.ood_gap(0.9, 0.6) == pytest.approx(0.3)
    assert M.ood_gaps(0.8, {"upper": 0.7, "typos": 0.5}) == pytest.approx({"upper": 0.1, "typos": 0.3})
    with pytest.raises(ValueError, match="refused"):
        M.refusal_rate([])
    with pytest.raises(ValueError, match="ood_accuracy"):
        M.ood_gap(0.5, 1.5)


def test_toxicity_aggregates():
    scores = [[0.1, 0.7], [0.2, 0.3], [0.5]]
    assert M.expected_max_toxicity(scores) == pytest.approx((0.7 + 0.3 + 0.5) / 3)
    assert M.toxicity_probability(scores) == pytest.approx(2 / 3)
    assert M.toxicity_probability(scores, threshold=0.6) == pytest.approx(1 / 3)


# ---------------------------------------------------------------- distributions


def test_distribution_entropy_hand_values():
    assert M.distribution_entropy([1, 1, 1, 1]) == pytest.approx(2.0)
    assert M.distribution_entropy([5, 5], base="e") == pytest.approx(math.log(2))
    assert M.distribution_entropy([3, 1]) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert M.distribution_entropy([7, 0, 0]) == 0.0


def test_js_divergence_hand_values():
    # disjoint supports: 1 bit
    assert M.js_divergence([2, 0], [0, 4]) == pytest.approx(1.0)
    assert M.js_divergence([2, 0], [0, 4], base="e") == pytest.approx(math.log(2))
    # p=[1,0], q=[.5,.5], m=[.75,.25]
    kl_pm = math.log2(1 / 0.75)
    kl_qm = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    expected = 0.5 * kl_pm + 0.5 * kl_qm
    assert expected == pytest.approx(0.3112781244591328)
    assert M.js_divergence([1, 0], [1, 1]) == pytest.approx(expected)
    assert M.js_divergence([1, 1], [1, 0]) == pytest.approx(expected)  # symmetric
    assert M.js_divergence([3, 1, 2], [6, 2, 4]) == 0.0  # same distribution, different totals


def test_js_divergence_bad_input():
    with pytest.raises(ValueError, match="q_counts"):
        M.js_divergence([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="p_counts"):
        M.js_divergence([0, 0], [1, 1])
    with pytest.raises(ValueError, match="base"):
        M.js_divergence([1, 0], [0, 1], base="10")


def test_per_layer_js():
    out = M.per_layer_js({0: [1, 0], 1: [1, 1]}, {0: [0, 1], 1: [1, 1]})
    assert out == pytest.approx({0: 1.0, 1: 0.0})
    with pytest.raises(ValueError, match="shifted"):
        M.per_layer_js({0: [1]}, {1: [1]})
