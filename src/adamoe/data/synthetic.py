"""Generated multiple-choice tasks: offline, seeded, deterministic, written entirely by our templates.

They exist so that the demo and the tests can train and evaluate without any hub access and without
third-party text. Made-up entity names keep the tasks free of world knowledge: a model has to read
(facts, nli) or compute (arith), which a small model can learn within minutes of fine-tuning.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from adamoe.data.examples import MCExample

__all__ = ["SYNTHETIC_SPLITS", "SYNTHETIC_TASKS", "SyntheticSpec", "generate_synthetic", "get_synthetic_task"]

SYNTHETIC_SPLITS: dict[str, int] = {"validation": 200, "test": 500, "train": 4000}
# Eval splits are generated first and later splits skip any prompt already used, so a model trained
# on "train" has never seen an evaluated item verbatim.
_SPLIT_ORDER = ("validation", "test", "train")

Item = tuple[str, list[str], int]
Generator = Callable[[random.Random], Item]

_ONSETS = (
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gl",
    "k",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "pl",
    "r",
    "s",
    "sk",
    "t",
    "tr",
    "v",
    "z",
)
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
_CODAS = ("", "n", "r", "l", "m", "s", "x", "k", "th")


def made_up_name(rng: random.Random, syllables: int = 2) -> str:
    """A pronounceable nonsense word, so no fact about it can be known in advance."""
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))


def _distinct_names(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = made_up_name(rng)
        if name not in names:
            names.append(name)
    return names


def _shuffle_with_answer(rng: random.Random, answer: str, distractors: list[str]) -> tuple[list[str], int]:
    choices = [answer, *distractors]
    rng.shuffle(choices)
    return choices, choices.index(answer)


# --- synthetic-arith ---------------------------------------------------------------------------------


def _arith(rng: random.Random) -> Item:
    op = rng.choice("+-*")
    if op == "+":
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        c = a + b
    elif op == "-":
        a = rng.randint(10, 99)
        b = rng.randint(1, a - 1)
        c = a - b
    else:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        c = a * b
    pool = {c + d for d in (-10, -2, -1, 1, 2, 10)} | {a + b, abs(a - b), a * b}
    pool = sorted(x for x in pool if x >= 0 and x != c)
    distractors = [str(x) for x in rng.sample(pool, 3)]
    choices, label = _shuffle_with_answer(rng, str(c), distractors)
    sym = {"+": "+", "-": "-", "*": "x"}[op]
    return f"Question: What is {a} {sym} {b}?\nAnswer:", choices, label


# --- synthetic-facts ---------------------------------------------------------------------------------

# (fact template, question template, values); all wording is ours.
_FACT_KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "The {e} is {v}.",
        "What colour is the {e}?",
        ("red", "blue", "green", "yellow", "purple", "orange", "white", "black"),
    ),
    (
        "The {e} lives in {v}.",
        "Where does the {e} live?",
        (
            "the forest",
            "the desert",
            "the river",
            "the hills",
            "the marsh",
            "the city",
            "the caves",
            "the snow",
        ),
    ),
    (
        "The {e} eats {v}.",
        "What does the {e} eat?",
        ("apples", "fish", "bread", "seeds", "honey", "rice", "carrots", "cheese"),
    ),
    (
        "The {e} has {v} legs.",
        "How many legs does the {e} have?",
        ("two", "three", "four", "five", "six", "seven", "eight", "ten"),
    ),
    (
        "The {e} is used for {v}.",
        "What is the {e} used for?",
        (
            "cutting wood",
            "carrying water",
            "catching fish",
            "drying clothes",
            "opening locked doors",
            "baking bread",
            "cleaning floors",
            "writing letters",
        ),
    ),
    (
        "The {e} was found by {v}.",
        "Who found the {e}?",
        (
            "a young farmer",
            "an old sailor",
            "two children",
            "a tired soldier",
            "the village baker",
            "a travelling doctor",
            "the night guard",
            "a lost hunter",
        ),
    ),
)


def _facts(rng: random.Random) -> Item:
    fact, question, values = rng.choice(_FACT_KINDS)
    n_facts = 3
    entities = _distinct_names(rng, n_facts)
    picked = rng.sample(values, n_facts + 1)  # one value stays unmentioned as an extra distractor
    target = rng.randrange(n_facts)
    facts = " ".join(fact.format(e=e, v=v) for e, v in zip(entities, picked[:n_facts]))
    answer = picked[target]
    choices, label = _shuffle_with_answer(rng, answer, [v for v in picked if v != answer])
    return f"{facts}\nQuestion: {question.format(e=entities[target])}\nAnswer:", choices, label


# --- synthetic-nli -----------------------------------------------------------------------------------

_COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "grey", "brown")


def _nli(rng: random.Random) -> Item:
    group, person = _distinct_names(rng, 2)
    person = person.capitalize()
    colour, other = rng.sample(_COLOURS, 2)
    kind = rng.randrange(3)
    if kind == 0:  # follows from the premise
        premise, hypothesis, label = f"Every {group} is {colour}. {person} is a {group}.", colour, 0
    elif kind == 1:  # contradicts it (colours are exclusive)
        premise, hypothesis, label = f"Every {group} is {colour}. {person} is a {group}.", other, 1
    else:  # undetermined: the person is not in the group
        premise, hypothesis, label = f"Every {group} is {colour}. {person} is not a {group}.", colour, 2
    context = f"{premise}\nQuestion: {person} is {hypothesis}. Yes, No, or Maybe?\nAnswer:"
    return context, ["Yes", "No", "Maybe"], label


@dataclass(kw_only=True)
class SyntheticSpec:
    """A generated task: name, one-item generator and the default evaluation split."""

    name: str
    generate: Generator
    split: str = "test"
    description: str = ""

    def validate(self) -> SyntheticSpec:
        """Check the name prefix and split; returns ``self`` so specs validate where they are listed."""
        if not self.name.startswith("synthetic-"):
            raise ValueError(f"SyntheticSpec.name: expected a 'synthetic-' prefix, got {self.name!r}")
        if self.split not in SYNTHETIC_SPLITS:
            raise ValueError(f"SyntheticSpec.split ({self.name}): expected one of {sorted(SYNTHETIC_SPLITS)}")
        return self


SYNTHETIC_TASKS: dict[str, SyntheticSpec] = {
    s.name: s.validate()
    for s in (
        SyntheticSpec(
            name="synthetic-arith", generate=_arith, description="two-operand arithmetic, 4 choices"
        ),
        SyntheticSpec(
            name="synthetic-facts",
            generate=_facts,
            description="three made-up facts in context, ask one; 4 choices (learnable by fine-tuning)",
        ),
        SyntheticSpec(name="synthetic-nli", generate=_nli, description="syllogism Yes/No/Maybe, 3 choices"),
    )
}


def get_synthetic_task(name: str) -> SyntheticSpec | None:
    """The generated task ``name`` (case and ``_``/``-`` insensitive), or None."""
    key = name.strip().lower().replace("_", "-")
    return SYNTHETIC_TASKS.get(key)


def generate_synthetic(name: str, split: str, *, seed: int = 0, limit: int | None = None) -> list[MCExample]:
    """Deterministic examples of a generated task; splits never share a prompt."""
    spec = get_synthetic_task(name)
    if spec is None:
        raise ValueError(f"unknown generated task {name!r}; known: {', '.join(sorted(SYNTHETIC_TASKS))}")
    if split not in SYNTHETIC_SPLITS:
        raise ValueError(f"split: expected one of {', '.join(_SPLIT_ORDER)} for {spec.name}, got {split!r}")
    seen: set[str] = set()
    for current in _SPLIT_ORDER:
        n = SYNTHETIC_SPLITS[current]
        if current == split and limit is not None:
            n = min(n, limit)
        examples = _generate_split(spec, current, seed, n, seen)
        if current == split:
            return examples
    raise AssertionError("unreachable")  # pragma: no cover


def _generate_split(spec: SyntheticSpec, split: str, seed: int, n: int, seen: set[str]) -> list[MCExample]:
    # A string seed is hashed with SHA-512 by `random`, so streams are stable across runs and platforms.
    rng = random.Random(f"{spec.name}|{split}|{seed}")
    out: list[MCExample] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"{spec.name}: could not generate {n} distinct {split} items")
        context, choices, label = spec.generate(rng)
        if context in seen:
            continue
        seen.add(context)
        out.append(
            MCExample(
                id=f"{spec.name}-{split}-{len(out)}",
                context=context,
                choices=choices,
                label=label,
                task=spec.name,
            )
        )
    return out
