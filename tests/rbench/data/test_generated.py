import re
from collections import Counter

import numpy as np
import pytest

from adamoe.rbench.data import generated as G

IGNORANCE = tuple(h for h in G.facts._HEADS)  # every honest answer opens with one of these
NEGATION = ("never", "nothing", " no ", " not ", "only an hour", "at home all", "a car")


def test_deterministic_in_seed():
    assert G.generate_truthfulness_mc(10, seed=1) == G.generate_truthfulness_mc(10, seed=1)
    assert G.generate_truthfulness_mc(10, seed=1) != G.generate_truthfulness_mc(10, seed=2)
    assert G.generate_nli(9, seed=4) == G.generate_nli(9, seed=4)
    assert G.generate_sentiment(8, seed=0, domain="movie") != G.generate_sentiment(8, seed=1, domain="movie")
    with pytest.raises(ValueError, match="n:"):
        G.generate_nli(0)


def test_truthfulness_items_are_consistent():
    items = G.generate_truthfulness_mc(40, seed=0)
    assert len({it.id for it in items}) == 40
    for i, it in enumerate(items):
        assert sum(it.mc1.labels) == 1 and sum(it.mc2.labels) >= 1
        true1 = it.mc1.choices[it.mc1.labels.index(1)]
        if i % 2 == 0:  # grounded: the context states exactly the true answer, no false one
            value = true1.rstrip(".").lower()
            assert value in it.context.lower()
            for c, lab in zip(it.mc1.choices, it.mc1.labels):
                if not lab:
                    assert c.rstrip(".").lower() not in it.context.lower()
        else:  # unanswerable: no context, the truthful answers admit ignorance, the false ones assert
            assert it.context == "" and true1.startswith(IGNORANCE)
            for c, lab in zip(it.mc2.choices, it.mc2.labels):
                assert c.startswith(IGNORANCE) == bool(lab)


def _mean_and_chance(items, target: str, score) -> tuple[float, float]:
    """Mean MC1 accuracy (first argmax) or MC2 mass of a choice scorer, and the chance level."""
    vals, chance = [], []
    for it in items:
        t = getattr(it, target)
        ll = np.array([score(c) for c in t.choices], dtype=float)
        if target == "mc1":
            vals.append(float(t.labels[int(np.argmax(ll))]))
        else:
            p = np.exp(ll - ll.max())
            vals.append(float(p[np.array(t.labels) == 1].sum() / p.sum()))
        chance.append(sum(t.labels) / len(t.labels))
    return float(np.mean(vals)), float(np.mean(chance))


@pytest.mark.parametrize("target", ["mc1", "mc2"])
@pytest.mark.parametrize("kind", ["grounded", "unanswerable"])
@pytest.mark.parametrize("sign", [-1.0, 1.0], ids=["prefers-shorter", "prefers-longer"])
def test_answer_length_is_no_cue(target: str, kind: str, sign: float):
    """A scorer that knows nothing but length (log-likelihood = ±length, computed here by hand) lands
    near chance on both kinds of item — the old set gave it 1.0 on grounded and 0.0 on unanswerable."""
    items = G.generate_truthfulness_mc(600, seed=7)
    chosen = [it for it in items if bool(it.context) == (kind == "grounded")]
    mean, chance = _mean_and_chance(chosen, target, lambda c: sign * 0.3 * len(c))
    assert abs(mean - chance) < 0.1, (mean, chance)


def test_open_qa_answers_are_in_context():
    for it in G.generate_open_qa(30, seed=3):
        assert all(a.lower() in it.context.lower() for a in it.answers)


def test_nli_labels_balanced_and_match_keyword_reference():
    items = G.generate_nli(60, seed=0)
    assert Counter(it.label for it in items) == {0: 20, 1: 20, 2: 20}
    for it in items:
        assert "{" not in it.premise + it.hypothesis
        negated = any(k in f" {it.hypothesis} " for k in NEGATION)
        assert negated == (it.label == 2), it


def test_sentiment_domains_and_labels():
    pos = {"excellent", "wonderful", "great", "delightful", "superb", "impressive", "lovely"}
    neg = {"terrible", "awful", "disappointing", "dreadful", "poor", "mediocre", "dull"}
    vocab = {}
    for domain in G.SENTIMENT_DOMAINS:
        items = G.generate_sentiment(30, seed=0, domain=domain)
        assert Counter(it.label for it in items) == {0: 15, 1: 15}
        for it in items:
            words = set(re.findall(r"[a-z]+", it.text.lower()))
            assert (words & pos and not words & neg) if it.label else (words & neg and not words & pos)
        vocab[domain] = set(G.SENTIMENT_DOMAINS[domain]["subjects"])
    assert not (vocab["product"] & vocab["movie"]) and not (vocab["product"] & vocab["restaurant"])
    with pytest.raises(ValueError, match="domain"):
        G.generate_sentiment(3, domain="books")


def test_safety_prompt_sets():
    harm = G.generate_harmful_prompts()
    assert len(harm) == len({p.prompt for p in harm}) == 20
    assert len({p.category for p in harm}) == 8
    assert len(G.generate_harmful_prompts(templates_per_behaviour=4)) == 80
    benign = G.generate_benign_prompts()
    assert {p.category for p in benign} == {"benign"} and not {p.prompt for p in benign} & {
        p.prompt for p in harm
    }
    assert len(G.generate_toxicity_prompts()) >= 10
    with pytest.raises(ValueError, match="templates_per_behaviour"):
        G.generate_harmful_prompts(templates_per_behaviour=5)
