import pytest

from adamoe.data.examples import MCExample
from adamoe.rbench.perturb import shifts as S
from adamoe.rbench.perturb.text import word_spans


def _ex(i: int, context: str) -> MCExample:
    return MCExample(id=f"ex{i}", context=context, choices=(" yes", " no"), label=0, task="toy")


def test_casing_shifts():
    t = "The cat's 3 hats, McDonald!"
    assert S.shift_text(t, S.ShiftConfig(kind="upper")) == "THE CAT'S 3 HATS, MCDONALD!"
    assert S.shift_text(t, S.ShiftConfig(kind="lower")) == "the cat's 3 hats, mcdonald!"
    assert S.shift_text(t, S.ShiftConfig(kind="title")) == "The Cat'S 3 Hats, Mcdonald!"
    rc = S.shift_text(t, S.ShiftConfig(kind="random_case", seed=0), key="k")
    assert rc.lower() == t.lower() and rc != t
    assert rc == S.shift_text(t, S.ShiftConfig(kind="random_case", seed=0), key="k")
    assert rc != S.shift_text(t, S.ShiftConfig(kind="random_case", seed=1), key="k")


def test_typos_are_seeded_and_bounded():
    text = "Alice visited the old harbour museum with her two younger brothers yesterday"
    cfg = S.ShiftConfig(kind="typos", typo_rate=0.2, seed=5)
    out = S.shift_text(text, cfg, key="a")
    assert out == S.shift_text(text, cfg, key="a")
    assert out != S.shift_text(text, S.ShiftConfig(kind="typos", typo_rate=0.2, seed=6), key="a")
    before = [text[s:e] for s, e in word_spans(text)]
    after = [out[s:e] for s, e in word_spans(out)]
    assert sum(a != b for a, b in zip(before, after)) == 2  # floor(0.2 * 11 words)
    assert cfg.name == "typos0.2"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_typos_never_edit_names(seed):
    text = "Yesterday Maria visited Paris with her cheerful dog and watched a movie."
    out = S.typos(text, n_edits=20, kinds=("swap", "delete", "insert", "homoglyph"), seed=seed, key="k")
    after = [out[s:e] for s, e in word_spans(out)]
    assert "Maria" in after and "Paris" in after and out != text
    assert S.typos(text, n_edits=0, kinds=("swap",), seed=seed, key="k") == text


def test_shift_field_of_examples_keeps_choices_and_ids():
    exs = [_ex(0, "It is very good."), _ex(1, "I do not know.")]
    out = S.shift_field(exs, S.ShiftConfig(kind="title"), field="context")
    assert [e.context for e in out] == ["It Is Very Good.", "I Do Not Know."]
    assert [e.id for e in out] == ["ex0", "ex1"]
    assert all(e.choices == [" yes", " no"] and e.label == 0 and e.task == "toy" for e in out)
    # per-example seeding: the item's id keys its stream, not its position
    cfg = S.ShiftConfig(kind="random_case", seed=3)
    assert S.shift_field(exs, cfg, field="context")[1] == S.shift_field(exs[1:], cfg, field="context")[0]
    assert S.shift_field(exs, cfg, field="context")[1].context == S.shift_text(exs[1].context, cfg, key="ex1")


def test_shift_config_errors():
    with pytest.raises(ValueError, match="kind"):
        S.shift_text("x", S.ShiftConfig(kind="pirate"))
    with pytest.raises(ValueError, match="typo_rate"):
        S.ShiftConfig(kind="typos", typo_rate=0).validate()
    with pytest.raises(ValueError, match="items"):
        S.shift_field([], S.ShiftConfig(kind="upper"), field="text")
    assert [c.name for c in S.default_shifts()] == [
        "upper",
        "lower",
        "random_case",
        "typos0.1",
    ]


def test_shift_field_on_records():
    from adamoe.data.spans import SpanMCItem

    item = SpanMCItem(
        id="n",
        text="I do not go.",
        prefix="I am here.\nQuestion: ",
        suffix=" True?",
        choices=("a", "b"),
        label=0,
        task="t",
    )
    out = S.shift_field([item], S.ShiftConfig(kind="upper"), field="text")
    assert out[0].text == "I DO NOT GO." and out[0].label == 0 and out[0].prefix == item.prefix
    out = S.shift_field([item], S.ShiftConfig(kind="lower"), field="text")
    assert (out[0].prefix, out[0].text) == ("I am here.\nQuestion: ", "i do not go.")
    with pytest.raises(ValueError, match="field"):
        S.shift_field([item], S.ShiftConfig(kind="upper"), field="label")
