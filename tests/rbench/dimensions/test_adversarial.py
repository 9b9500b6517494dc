"""Fixed adversarial sets: built once on the surrogate, frozen to a file, every model scored on the same
texts. References: the surrogate's own verdicts (every frozen edit flipped it), the model's embedding
neighbours (every substitute is one), the stated query budget, and a second run that must read the file."""

from __future__ import annotations

import json

import pytest

from adamoe.data.spans import span_to_mc
from adamoe.eval.evaluator import ModelEvaluator
from adamoe.hf.tiny import tiny_model
from adamoe.rbench.dimensions.adversarial import AdversarialConfig, AdversarialDimension, budget
from adamoe.rbench.perturb.neighbours import EmbeddingNeighbours
from tests.rbench.helpers import word_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread", "offline_wheel")

WORD = {"kinds": ["word"], "max_edits": 2, "max_edit_fraction": 1.0, "word_candidates": 3, "max_positions": 6}
WORD["constrained"] = False  # random tiny embeddings: no neighbour would pass the similarity floor


def _setup(tmp_path, word=WORD):
    cfg = AdversarialConfig(tasks=["rte", "sst2"], per_source=8, attacks={"word": dict(word)}, secondary={})
    dim = AdversarialDimension(cfg, surrogate="sur")
    data = dim.load(limit=None, seed=0)
    tok = word_tokenizer([span_to_mc(it).context + " True False negative positive" for it in data.items])

    def ev(name: str, seed: int) -> ModelEvaluator:
        model = tiny_model("llama", seed=seed, vocab_size=len(tok), max_position_embeddings=256)
        return ModelEvaluator(name=name, model=model, tokenizer=tok, info={}, cache_dir=tmp_path / name)

    return dim, data, ev


def test_the_fixed_set_is_built_on_the_surrogate_frozen_and_shared(tmp_path) -> None:
    dim, data, ev = _setup(tmp_path)
    sur = ev("sur", 2)
    result = dim.run(sur, data, seed=0)
    (path,) = (tmp_path / "adversarial").glob("word-*.json")
    frozen = json.loads(path.read_text())
    items = frozen["items"]
    assert items and frozen["surrogate"] == "sur" and frozen["attacked"] >= len(items)
    assert frozen["query_budget"] == budget(dim.config.attack_config("word", seed=0)) == 1 + 2 * 6 * 3
    assert all(r["queries"] <= frozen["query_budget"] for r in items)
    neighbours = EmbeddingNeighbours.from_model(sur.model, sur.tokenizer)
    for r in items:  # every frozen text flipped the surrogate, through its own nearest words
        assert r["clean_correct"] and not r["adv_correct"] and r["perturbed"] != r["original"]
        for e in r["edits"]:
            assert e["new"].lower() in {n.lower() for n in neighbours.neighbours(e["old"], 3)}
    assert result.metrics["adv_acc_word"] == 0.0 and result.metrics["drop_word"] == 1.0
    assert result.estimates["adv_acc_word"]["n"] == len(items)

    other = ev("other", 5)  # another model: scored on the very same texts, never attacked itself
    seen: list[list[str]] = []
    score = other.score
    other.score = lambda d, stage, exs: seen.append([ex.context for ex in exs]) or score(d, stage, exs)
    dim.run(other, data, seed=0)
    by_id = {it.id: it for it in data.items}
    assert all(r["gold"] == by_id[r["key"]].choices[by_id[r["key"]].label] for r in items)  # auditable alone
    want = [by_id[r["key"]].prefix + r["perturbed"] + by_id[r["key"]].suffix for r in items]
    assert seen[1] == want and other.computed["attack"] == 0

    fresh = dim.load(limit=None, seed=0)  # a new run (same cache root) reads the file instead of attacking
    again = ev("sur", 2)
    assert dim.run(again, fresh, seed=0).metrics == result.metrics and again.computed["attack"] == 0


def test_a_model_other_than_the_surrogate_cannot_build_the_set(tmp_path) -> None:
    dim, data, ev = _setup(tmp_path)
    with pytest.raises(ValueError, match=r"built on the surrogate 'sur', which has not run") as err:
        dim.run(ev("other", 5), data, seed=0)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"adversarial\.tasks"):
        AdversarialConfig(tasks=["hellaswag"]).validate()


def test_the_ranked_synonym_set_keeps_its_stated_budget(tmp_path) -> None:
    from adamoe.rbench.perturb.lexicon import default_lexicon

    ranked = {"kinds": ["word"], "search": "ranked", "word_source": "synonyms", "max_edit_fraction": 1.0}
    ranked |= {"word_candidates": 3, "max_queries": 4, "min_similarity": -1.0, "max_fluency_drop": 1e3}
    dim, data, ev = _setup(tmp_path, ranked)
    sur = ev("sur", 2)
    cfg = dim.config.attack_config("word", seed=0)
    results = dim._attack(sur, data.items, "word", cfg)
    attacked = [r for r in results if r.clean_correct]
    assert attacked and budget(cfg) == 4 and all(r.queries <= 4 for r in results)
    assert max(r.queries for r in attacked) == 4  # unbounded, two items would ask 5 (hand-run)
    assert all(r.queries == 1 for r in results if not r.clean_correct)
    edits = [e for r in results for e in r.edits]
    assert edits and all(default_lexicon().are_synonyms(e.old, e.new) for e in edits)
    assert sur.queries > sum(r.queries for r in results)  # plus one fluency call per word tried
    dim.run(sur, data, seed=0)
    (path,) = (tmp_path / "adversarial").glob("word-*.json")
    assert json.loads(path.read_text())["query_budget"] == 4
