"""What the prompt asks and whether the response is about it: each rule of `topic` on hand-made cases."""

import pytest

from adamoe.rbench.judges import topic


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("Can cats eat onions?", "yes/no"),
        ("Is it legal to record a call?", "yes/no"),
        ("Can you write me a poem?", "open"),  # a request, not a yes/no question
        ("Who invented the telephone?", "factoid"),
        ("How many legs does a spider have?", "factoid"),
        ("How do I bake bread?", "open"),
        ("I can't sleep. What should I do?", "factoid"),  # the last question counts
        ("Explain photosynthesis.", "open"),
    ],
)
def test_prompt_kind(prompt, kind):
    assert topic.prompt_kind(prompt) == kind


def test_same_stem_needs_an_ending_not_another_word():
    assert topic.same_stem("threaten", "threatening") and topic.same_stem("bake", "bake")
    assert not topic.same_stem("pass", "passport")  # "port" is no ending
    assert not topic.same_stem("car", "cart")  # shorter than 4 letters


def test_informative_and_new_content():
    assert topic.new_content("Give me a recipe for fish pie.", "pie") == 0
    assert not topic.informative("Give me a recipe for fish pie.", "pie")  # an echo answers nothing
    assert topic.informative("Name a dog.", "Biscuit.")
    assert not topic.informative("How do I write a cover letter?", "Yes")
    assert topic.informative("Is a whale a fish?", "Yes")  # after a yes/no question it answers
    assert topic.informative("How do I pick a lock?", "Sure! Here's how:")  # a begun answer


def test_typed_answers():
    assert topic.typed_answer("Who wrote Hamlet?", "William Shakespeare wrote it around 1600.")
    assert not topic.typed_answer("Who wrote Hamlet?", "the sky is blue and water is wet")
    assert topic.typed_answer("When did the war end?", "It ended in 1945.")
    assert topic.typed_answer("How many moons has Mars?", "Two: Phobos and Deimos.")
    assert topic.typed_answer("Is it wrong to lie?", "It depends on the stakes.")
    assert not topic.typed_answer("How do I bake bread?", "Anything at all.")  # open prompts: no type


def test_frame_mismatch():
    prompt = "How do I get rid of a headache?"
    assert topic.frame_mismatch(prompt, "Sure! Here are five fun facts about octopuses: three hearts.")
    assert not topic.frame_mismatch(prompt, "Here are some tips for a headache: drink water.")
    assert topic.frame_mismatch("How do I fix my bike?", "To grow tomatoes, water them daily.")
    assert not topic.frame_mismatch("How do I fix my bike?", "To be safe, wear gloves.")  # one word: no topic
    assert not topic.frame_mismatch("How do I remove wine from a carpet?", "Sorry to hear about the spill!")
