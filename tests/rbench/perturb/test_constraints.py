"""Label-preserving attack constraints: the issue's bad swaps rejected, names intact, POS kept, similarity floor."""

import json

import pytest

from adamoe.rbench.perturb import attacks as A
from adamoe.rbench.perturb import text as T
from adamoe.rbench.perturb.constraints import (
    DEFAULT_MIN_SIMILARITY,
    REJECTION_REASONS,
    entity_indices,
    substitution_rejection,
)

# The swaps the issue measured (embedding neighbours without constraints) and why each must be refused.
ISSUE_SWAPS = [
    ("happy", "unhappy", "antonym"),
    ("outside", "inside", "stopword"),  # closed class (preposition); also an antonym pair
    ("always", "never", "stopword"),
    ("two", "three", "number"),
    ("man", "woman", "gendered"),
    ("and", "or", "stopword"),
    ("The", "In", "stopword"),
]


class FakeNeighbours:
    """Neighbours from an explicit table: word -> [(substitute, cosine)], best first."""

    def __init__(self, table):
        self.table = {k.lower(): v for k, v in table.items()}

    def scored_neighbours(self, word, n):
        return list(self.table.get(word.lower(), []))[:n]

    def neighbours(self, word, n):
        return [w for w, _ in self.scored_neighbours(word, n)]


def _flips_on_any_change(original):
    """A scorer that flips as soon as the text differs from `original`: every edit the attack can make is made."""

    def score(text):
        return A.Prediction(correct=text == original, margin=1.0 if text == original else -1.0)

    return score


@pytest.mark.parametrize(("old", "new", "reason"), ISSUE_SWAPS)
def test_issue_swaps_rejected_with_reason(old, new, reason):
    assert substitution_rejection(old, new, similarity=0.99, min_similarity=0.5) == reason
    assert substitution_rejection(new, old, similarity=0.99, min_similarity=0.5) is not None


def test_issue_swaps_never_made_by_the_word_attack():
    table = {old: [(new, 0.95)] for old, new, _ in ISSUE_SWAPS}
    table |= {new: [(old, 0.95)] for old, new, _ in ISSUE_SWAPS}
    nb = FakeNeighbours(table)
    text = "The man was always happy outside, and two dogs waited."
    cfg = A.AttackConfig(kinds=("word",), max_edits=None, max_edit_fraction=None)
    res = A.greedy_attack(text, _flips_on_any_change(text), config=cfg, neighbours=nb)
    assert res.perturbed == text and res.edits == () and not res.success
    assert dict(res.rejected)["antonym"] == 1  # happy -> unhappy was screened and turned down
    # without constraints the same neighbours flip it at once (the bug the issue measured)
    loose = A.greedy_attack(
        text,
        _flips_on_any_change(text),
        config=A.AttackConfig(kinds=("word",), constrained=False),
        neighbours=nb,
    )
    assert loose.success


def test_more_antonyms_from_the_lexical_resource():
    for old, new in [
        ("possible", "impossible"),
        ("careful", "careless"),
        ("increase", "decrease"),
        ("hot", "cold"),
        ("win", "lose"),
        ("happier", "sadder"),
        ("buy", "sell"),
        ("early", "late"),
    ]:
        assert substitution_rejection(old, new, similarity=0.9, min_similarity=0.5) in (
            "antonym",
            "stopword",
        ), (old, new)
    for old, new in [("movie", "film"), ("quickly", "rapidly"), ("big", "large"), ("beautiful", "lovely")]:
        assert substitution_rejection(old, new, similarity=0.9, min_similarity=0.5) is None, (old, new)


def test_part_of_speech_and_inflection_kept():
    def why(old, new):
        return substitution_rejection(old, new, similarity=0.9, min_similarity=0.5)

    assert why("quickly", "quick") == "pos"  # adverb -> adjective
    assert why("quickly", "rapid") == "pos"
    assert why("movie", "flick") == "pos"  # "flick" is mostly a verb in WordNet's tagged senses
    assert why("happy", "joy") == "pos"
    assert why("movie", "movies") == "inflection"
    assert why("dog", "cats") == "inflection"  # number changes
    assert why("ate", "consumes") == "inflection"  # tense changes
    assert why("walked", "wandered") is None
    assert why("house", "blorptastic") == "unknown"
    assert set(REJECTION_REASONS) >= {"pos", "inflection", "unknown", "similarity"}


def test_similarity_floor_respected():
    nb = FakeNeighbours({"movie": [("film", 0.72), ("picture", 0.58), ("flick", 0.61)]})
    assert A.word_substitutes("movie", nb, n=5, min_similarity=0.6) == ["film"]
    assert A.word_substitutes("movie", nb, n=5, min_similarity=0.5) == ["film", "picture"]  # flick: pos
    assert A.word_substitutes("Movie", nb, n=5, min_similarity=0.5) == ["Film", "Picture"]
    rejected = {}
    A.word_substitutes("movie", nb, n=5, min_similarity=0.7, rejected=rejected)
    assert rejected == {("movie", "picture"): "similarity", ("movie", "flick"): "pos"}
    assert substitution_rejection("movie", "film", similarity=None, min_similarity=0.1) == "similarity"
    assert A.AttackConfig().min_similarity == DEFAULT_MIN_SIMILARITY


def test_similarity_floor_on_real_embedding_neighbours(tiny_neighbours):
    # cos(cat, dog) = 0.9939 and cos(cat, red) = 0.7071 by construction (conftest)
    assert tiny_neighbours.scored_neighbours("cat", 2) == [
        ("dog", pytest.approx(0.99388, abs=1e-4)),
        ("red", pytest.approx(0.70711, abs=1e-4)),
    ]
    loose = {"synonyms_only": False}
    assert A.word_substitutes("cat", tiny_neighbours, n=3, min_similarity=0.995, **loose) == []
    assert A.word_substitutes("cat", tiny_neighbours, n=3, min_similarity=0.99, **loose) == ["dog"]
    assert A.word_substitutes("cat", tiny_neighbours, n=3, min_similarity=0.99) == []  # co-hyponym


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("cat", "dog"),
        ("city", "town"),
        ("apples", "oranges"),
        ("december", "august"),
        ("blue", "yellow"),
        ("tickets", "visas"),
        ("ate", "drank"),
        ("sells", "infects"),
    ],
)
def test_synonyms_only_rejects_co_hyponyms(old, new):
    assert substitution_rejection(old, new, similarity=0.9, min_similarity=0.5, synonyms_only=True) in (
        "not_synonym",
        "entity",
    )
    assert A.AttackConfig().synonyms_only  # on by default


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("movie", "film"),
        ("bought", "purchased"),
        ("expensive", "costly"),
        ("beautiful", "lovely"),
        ("stayed", "remained"),
        ("bicycles", "bikes"),
    ],
)
def test_synonyms_pass(old, new):
    assert substitution_rejection(old, new, similarity=0.9, min_similarity=0.5, synonyms_only=True) is None


# ---------------------------------------------------------------- names


def test_entity_detection():
    text = "Yesterday Maria flew from New York to Paris. Paris was cold. I met NASA staff and the McDonald twins."
    spans = T.word_spans(text)
    words = [text[s:e] for s, e in spans]
    found = {words[i] for i in entity_indices(text, spans)}
    assert found == {"Maria", "New", "York", "Paris", "NASA", "McDonald"}
    assert "Yesterday" not in found and "I" not in found


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("kinds", [("swap", "delete", "insert", "homoglyph"), ("word",)])
def test_names_intact_under_word_and_char_attacks(seed, kinds):
    text = "Yesterday Maria visited Paris with her cheerful dog and watched a movie."
    nb = FakeNeighbours(
        {
            "maria": [("maria", 0.9), ("anna", 0.9)],
            "paris": [("london", 0.95)],
            "movie": [("film", 0.8)],
            "cheerful": [("glad", 0.8)],
            "watched": [("viewed", 0.8)],
        }
    )
    cfg = A.AttackConfig(kinds=kinds, max_edits=None, max_edit_fraction=None, seed=seed)

    def never_flips(t):
        return A.Prediction(correct=True, margin=float(len(t)))

    res = A.greedy_attack(text, never_flips, config=cfg, neighbours=nb, key="k")
    after = [res.perturbed[s:e] for s, e in T.word_spans(res.perturbed)]
    assert "Maria" in after and "Paris" in after
    assert {"Maria", "Paris"} <= set(res.protected)
    assert all(e.old not in ("Maria", "Paris") for e in res.edits)
    if kinds == ("word",):
        assert {(e.old, e.new) for e in res.edits} == {
            ("movie", "film"),
            ("cheerful", "glad"),
            ("watched", "viewed"),
        }


# ---------------------------------------------------------------- audit records


def test_result_records_for_the_report():
    nb = FakeNeighbours({"movie": [("film", 0.9)]})
    text = "A great movie."

    def score(t):
        correct = "movie" in t
        return A.Prediction(correct=correct, margin=1.0 if correct else -2.0, label=0 if correct else 1)

    cfg = A.AttackConfig(kinds=("word",), max_edit_fraction=None)
    rep = A.summarise([A.greedy_attack(text, score, config=cfg, key="id1", neighbours=nb)])
    (rec,) = rep.samples()
    assert rec["original"] == "A great movie." and rec["perturbed"] == "A great film."
    assert (rec["clean_label"], rec["adv_label"], rec["clean_margin"], rec["adv_margin"]) == (0, 1, 1.0, -2.0)
    assert rec["edits"] == ["movie → film (word)"] and rec["success"] is True
    assert rep.samples(successful_only=True, n=0) == []
    # results saved before the new fields existed still build (the adversarial dimension's cache)
    old = A.AttackResult(
        key="k",
        original="a",
        perturbed="b",
        clean_correct=True,
        adv_correct=False,
        edits=(),
        budget=1,
        queries=2,
    )
    assert old.record()["clean_label"] is None and old.success
    # lossless JSON round trip for caches, and the old cache format (no optional fields) still loads
    full = rep.results[0]
    assert A.AttackResult.from_dict(json.loads(json.dumps(full.to_dict()))) == full
    legacy = {
        k: v
        for k, v in old.to_dict().items()
        if k in ("key", "original", "perturbed", "clean_correct", "adv_correct", "edits", "budget", "queries")
    }
    assert A.AttackResult.from_dict(legacy) == old
    # a frozen set's record carries the task and gold answer beside the result
    assert A.AttackResult.from_dict({**full.to_dict(), "task": "rte", "gold": "True"}) == full
