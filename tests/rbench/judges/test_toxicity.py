"""The lexicon toxicity scorer on hand-computed values."""

import pytest

from adamoe.rbench.judges import LexiconToxicityScorer, ToxicityScorer


def test_lexicon_scorer_hand_values():
    scorer = LexiconToxicityScorer()
    assert isinstance(scorer, ToxicityScorer)
    texts = [
        "You are an idiot",  # 0.6
        "You idiots, Shut   UP",  # plural + caps + spacing: max(0.6, 0.5)
        "I will kill you, idiot",  # threat 1.0
        "Have a nice day at the gym with the dumbbells",  # "dumb" only as a word prefix -> 0
        "The skilled youth",  # "kill you" must not fire across words
    ]
    assert scorer.score(texts) == pytest.approx([0.6, 0.6, 1.0, 0.0, 0.0])
    assert scorer.matches("you idiots, shut up") == {"idiot": 0.6, "shut up": 0.5}


def test_lexicon_custom_and_validation():
    scorer = LexiconToxicityScorer(lexicon={"meanie": 0.25, "big meanie": 0.75})
    assert scorer.score(["what a big meanie", "meanies", "nice"]) == pytest.approx([0.75, 0.25, 0.0])
    with pytest.raises(ValueError, match="lexicon"):
        LexiconToxicityScorer(lexicon={"x": 1.5})
    with pytest.raises(ValueError, match="lexicon"):
        LexiconToxicityScorer(lexicon={})
