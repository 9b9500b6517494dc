"""Greedy attack under an edit budget on toy scorers, random perturbation, attack summaries."""

import math
from dataclasses import replace

import pytest

from adamoe.rbench.perturb import attacks as A
from adamoe.rbench.perturb import chars as C
from adamoe.rbench.perturb import text as T

# ---------------------------------------------------------------- budget


def test_budget_rule():
    cfg = A.AttackConfig(max_edits=3, max_edit_fraction=0.2)
    assert cfg.budget(10) == 2  # floor(0.2*10)
    assert cfg.budget(4) == 1  # at least one word
    assert cfg.budget(100) == 3  # max_edits caps it
    assert cfg.budget(0) == 0
    assert A.AttackConfig(max_edits=None, max_edit_fraction=None).budget(7) == 7
    with pytest.raises(ValueError, match="kinds"):
        A.AttackConfig(kinds=("swap", "paraphrase")).validate()
    with pytest.raises(ValueError, match="max_edit_fraction"):
        A.AttackConfig(max_edit_fraction=0.0).validate()


def _never_flips(text: str) -> A.Prediction:
    return A.Prediction(correct=True, margin=float(len(text)))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kinds", [C.CHAR_KINDS, ("homoglyph",), ("delete", "insert")])
def test_greedy_spends_budget_and_never_more(seed, kinds):
    text = "The quick brown fox, aged 7, jumps over the lazy dog near a river bank today."
    cfg = A.AttackConfig(kinds=kinds, max_edits=10, max_edit_fraction=0.25, seed=seed)
    res = A.greedy_attack(text, _never_flips, config=cfg, key="ex")
    n_words = len(T.word_spans(text))
    assert res.budget == cfg.budget(n_words) == 3
    assert len(res.edits) == res.budget  # never flips, so the whole budget is used
    before = [text[s:e] for s, e in T.word_spans(text)]
    after = [res.perturbed[s:e] for s, e in T.word_spans(res.perturbed)]
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert len(before) == len(after) and len(changed) <= res.budget
    assert sorted(e.word_index for e in res.edits) == changed
    # digits, punctuation and spaces are never touched
    assert [c for c in res.perturbed if not c.isalpha()] == [c for c in text if not c.isalpha()]


# ---------------------------------------------------------------- greedy loop on a toy scorer


def _count_good(text: str) -> A.Prediction:
    """Correct while at least one intact 'good' remains; margin = intact count - 0.5."""
    m = sum(w == "good" for w in text.split()) - 0.5
    return A.Prediction(correct=m > 0, margin=m)


def test_greedy_toy_flip_hand_traced():
    cfg = A.AttackConfig(kinds=("delete",), max_edits=2, max_edit_fraction=None, seed=0)
    res = A.greedy_attack("good good movie", _count_good, config=cfg, key="k")
    # step 1: candidates on 3 words -> margins 0.5, 0.5, 1.5 -> first 'good' (index 0) chosen
    # step 2: candidate on word 1 flips at once -> stop
    assert res.success and res.clean_correct and not res.adv_correct
    assert [e.word_index for e in res.edits] == [0, 1]
    assert res.perturbed.split()[2] == "movie"
    assert res.queries == 1 + 3 + 1
    # one edit is not enough
    res1 = A.greedy_attack("good good movie", _count_good, config=replace(cfg, max_edits=1), key="k")
    assert not res1.success and res1.adv_correct and len(res1.edits) == 1


def test_greedy_skips_items_already_wrong():
    res = A.greedy_attack("bad movie", _count_good, config=A.AttackConfig(), key="k")
    assert res.edits == () and res.queries == 1 and res.perturbed == "bad movie"
    assert not res.clean_correct and not res.success


def test_determinism_and_seed_sensitivity():
    texts = [f"sample sentence number {i} about cheerful painters and careful bakers" for i in range(6)]
    cfg = A.AttackConfig(max_edits=3, max_edit_fraction=None, seed=11)

    def run(c):
        return [A.greedy_attack(t, _never_flips, config=c, key=str(i)).perturbed for i, t in enumerate(texts)]

    assert run(cfg) == run(cfg)
    assert run(cfg) != run(replace(cfg, seed=12))
    # order independence: attacking a single item gives the same result as within the batch
    assert A.greedy_attack(texts[3], _never_flips, config=cfg, key="3").perturbed == run(cfg)[3]


def test_summarise_counts_success_among_the_clean_correct():
    texts = ["good good movie", "good film", "bad movie", "good good good show"]
    cfg = A.AttackConfig(kinds=("delete",), max_edits=2, max_edit_fraction=None)
    rep = A.summarise([A.greedy_attack(t, _count_good, config=cfg, key=str(i)) for i, t in enumerate(texts)])
    # clean: T, T, F, T; after <=2 deletions: flipped, flipped, F, survives (3 goods)
    assert rep.clean_accuracy == pytest.approx(0.75)
    assert rep.robust_accuracy == pytest.approx(0.25)
    assert rep.attack_success_rate == pytest.approx(2 / 3)  # 2 flipped of 3 clean-correct
    assert rep.mean_edits_successful == pytest.approx((2 + 1) / 2)
    nothing = A.greedy_attack("bad", _count_good, config=cfg)  # wrong on clean input: nothing to attack
    assert math.isnan(A.summarise([nothing]).attack_success_rate)
    with pytest.raises(ValueError, match="results"):
        A.summarise([])


def test_mc_prediction():
    assert A.mc_prediction([-1.0, -3.0, -2.0], 0) == A.Prediction(True, 1.0, 0)
    assert A.mc_prediction([-1.0, -3.0, -2.0], 2) == A.Prediction(False, -1.0, 0)
    assert A.mc_prediction([-2.0, -1.0, -1.0], 2) == A.Prediction(False, 0.0, 1)  # tie: first is chosen
    with pytest.raises(ValueError, match="label"):
        A.mc_prediction([-1.0, -2.0], 2)


def test_word_level_greedy_attack(tiny_neighbours):
    def has_cat(text):
        m = 1.0 if "cat" in text.lower().split() else -1.0
        return A.Prediction(correct=m > 0, margin=m)

    # cat -> dog is a co-hyponym swap: allowed only with the synonym requirement off (the mechanics are tested)
    cfg = A.AttackConfig(
        kinds=("word",), max_edits=1, max_edit_fraction=None, word_candidates=2, synonyms_only=False
    )
    res = A.greedy_attack("Cat car", has_cat, config=cfg, neighbours=tiny_neighbours)
    assert res.success and res.perturbed == "Dog car"  # case carried over
    assert res.edits == (A.Edit(word_index=0, kind="word", old="Cat", new="Dog"),)
    with pytest.raises(ValueError, match="neighbours"):
        A.greedy_attack("cat", has_cat, config=cfg)


# ---------------------------------------------------------------- ranked (TextFooler-like) search

WEIGHTS = {"alpha": 3.0, "beta": 1.0, "gamma": 2.0, "a2": 2.0, "a3": 2.5, "g2": 1.0, "b2": 0.0}
SUBS = {"alpha": [("a2", 0.9), ("a3", 0.8)], "gamma": [("g2", 0.9)], "beta": [("b2", 0.9)]}


def _weighted(calls):
    """margin = sum of the word weights - 3.6; every text asked is appended to `calls`."""

    def score(text):
        calls.append(text)
        m = sum(WEIGHTS.get(w, 0.0) for w in text.split()) - 3.6
        return A.Prediction(correct=m > 0, margin=m)

    return score


def _ranked(**kw):
    base = {"kinds": ("word",), "search": "ranked", "max_edits": 3, "max_edit_fraction": None}
    return A.AttackConfig(**(base | {"constrained": False, "word_candidates": 2} | kw))


def test_ranked_order_hand_traced():
    from .test_constraints import FakeNeighbours

    calls = []
    res = A.ranked_attack(
        "alpha beta gamma", _weighted(calls), config=_ranked(), neighbours=FakeNeighbours(SUBS)
    )
    # clean 6 - 3.6 = 2.4; deleting alpha / beta / gamma loses 3 / 1 / 2 -> order alpha, gamma, beta
    # alpha: a2 -> 1.4, a3 -> 1.9, keep a2; gamma: g2 -> 0.4, keep; beta: b2 -> -0.6, flipped
    assert calls == [
        "alpha beta gamma",
        "beta gamma",
        "alpha gamma",
        "alpha beta",
        "a2 beta gamma",
        "a3 beta gamma",
        "a2 beta g2",
        "a2 b2 g2",
    ]
    assert res.success and res.perturbed == "a2 b2 g2" and res.queries == len(calls) == 8
    assert [(e.word_index, e.new) for e in res.edits] == [(0, "a2"), (2, "g2"), (1, "b2")]
    assert res.adv_margin == pytest.approx(-0.6) and res.clean_margin == pytest.approx(2.4)
    two = A.ranked_attack(
        "alpha beta gamma", _weighted([]), config=_ranked(max_edits=2), neighbours=FakeNeighbours(SUBS)
    )
    assert not two.success and two.perturbed == "a2 beta g2" and two.queries == 7  # the edit budget ends it


@pytest.mark.parametrize("cap", [1, 2, 4, 5, 6, 7])
def test_ranked_query_budget_is_never_exceeded(cap):
    from .test_constraints import FakeNeighbours

    calls = []
    res = A.ranked_attack(
        "alpha beta gamma", _weighted(calls), config=_ranked(max_queries=cap), neighbours=FakeNeighbours(SUBS)
    )
    assert res.queries == len(calls) == cap  # 8 queries needed: every one of the cap is spent, none more
    assert not res.success
    # with 5: clean, 3 deletions, a2 only (kept: it lowers the margin)
    if cap == 5:
        assert res.perturbed == "a2 beta gamma"


def test_ranked_fluency_rejects_and_orders():
    from .test_constraints import FakeNeighbours

    lls = {"a2": -1.5, "a3": -0.5, "g2": -3.0}  # log-likelihood change of each substitute

    def fluency(texts):
        return [sum(lls.get(w, 0.0) for w in t.split()) for t in texts]

    calls = []
    cfg = _ranked(max_fluency_drop=2.0)
    res = A.ranked_attack(
        "alpha beta gamma", _weighted(calls), config=cfg, neighbours=FakeNeighbours(SUBS), fluency=fluency
    )
    # alpha: both fluent, a3 (-0.5) tried before a2 (-1.5); a2 is kept (1.4 < 1.9); gamma: a2 + g2 is
    # 4.5 nats below the clean span (> 2): rejected, never asked; beta: a2 + b2 = -1.5, fluent; margin
    # 2 + 0 + 2 - 3.6 = 0.4: lower, kept, but no flip
    assert calls[4:] == ["a3 beta gamma", "a2 beta gamma", "a2 b2 gamma"]
    assert not res.success and res.perturbed == "a2 b2 gamma" and res.adv_margin == pytest.approx(0.4)
    assert dict(res.rejected) == {"fluency": 1}
    with pytest.raises(ValueError, match="fluency"):
        A.ranked_attack("alpha", _weighted([]), config=cfg, neighbours=FakeNeighbours(SUBS))


def test_ranked_constraint_rejections_cost_no_query():
    from .test_constraints import FakeNeighbours

    table = {"movie": [("films", 0.9), ("film", 0.7)], "good": [("bad", 0.9)]}
    calls = []

    def score(text):
        calls.append(text)
        return A.Prediction(correct="film" not in text, margin=-1.0 if "film" in text else 1.0)

    cfg = _ranked(constrained=True, min_similarity=0.5)
    res = A.ranked_attack("a good movie", score, config=cfg, neighbours=FakeNeighbours(table))
    # 'a' is a stopword, good -> bad an antonym, movie -> films another inflection: only movie -> film left
    assert calls == ["a good movie", "a good", "a good film"]
    assert res.success and dict(res.rejected) == {"antonym": 1, "inflection": 1}


def test_ranked_config_checks():
    with pytest.raises(ValueError, match="ranked"):
        A.AttackConfig(kinds=("swap",), search="ranked").validate()
    with pytest.raises(ValueError, match="max_queries"):
        A.AttackConfig(kinds=("word",), max_queries=10).validate()
