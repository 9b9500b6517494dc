"""The shipped WordNet-derived lexicon: morphology and relations (its builder: tests/scripts)."""

from adamoe.rbench.perturb.lexicon import default_lexicon


def test_shipped_lexicon_morphology_and_relations():
    lex = default_lexicon()
    assert lex.lemmas("ran") == {"v": {"run"}}
    assert lex.lemmas("cats") == {"n": {"cat"}, "v": {"cat"}}
    assert lex.main_tag("running") == "v" and lex.inflection("running") == "ing"
    assert [lex.inflection(w) for w in ("dog", "dogs", "walked", "ate", "happier", "happiest")] == [
        "base",
        "s",
        "ed",
        "ed",
        "er",
        "est",
    ]
    assert lex.main_tag("the") == "DET" and lex.is_number("twos") and lex.is_number("third")
    assert lex.is_name("Paris") and not lex.is_name("bill")
    assert lex.are_antonyms("inside", "outside") and lex.are_antonyms("legal", "illegal")
    assert not lex.are_antonyms("movie", "film") and lex.are_synonyms("movie", "films")
    assert lex.synonyms("movie") == {"film", "flick", "pic", "picture"}  # WordNet 3.0: one synset
    assert "movie" in lex.synonyms("films") and "film" not in lex.synonyms("films")  # own lemma excluded
    assert "man" in lex.gendered and "woman" in lex.gendered
