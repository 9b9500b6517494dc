"""The word-level attack on a word tokenizer: embedding neighbours, robust accuracy rescored."""

from __future__ import annotations

import pytest

from adamoe.hf.tiny import tiny_model
from adamoe.rbench.data.formats import nli_to_mc, nli_to_span
from adamoe.rbench.data.generated import generate_nli
from adamoe.rbench.dimensions.adversarial import AdversarialConfig, AdversarialDimension
from adamoe.rbench.evaluator import ModelEvaluator
from adamoe.rbench.perturb.neighbours import EmbeddingNeighbours
from tests.rbench.helpers import word_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


def test_word_attack_uses_embedding_neighbours_and_robust_accuracy_rescores() -> None:
    items = generate_nli(9, seed=0)
    tok = word_tokenizer([nli_to_mc(it).context + " True Neither False" for it in items])
    model = tiny_model("llama", seed=2, vocab_size=len(tok), max_position_embeddings=256)
    cfg = AdversarialConfig(
        attacks={
            "word": {
                "kinds": ["word"],
                "max_edits": 2,
                "max_edit_fraction": 1.0,
                "word_candidates": 3,
                "constrained": False,  # random tiny embeddings: no neighbour would pass the similarity floor
            }
        }
    )
    dim = AdversarialDimension(cfg)

    # the search itself: every substitute is one of the model's own nearest words for the replaced word
    spans = [nli_to_span(it) for it in items]
    results = dim._attack(
        ModelEvaluator(name="w", model=model, tokenizer=tok, info={}),
        spans,
        "word",
        cfg.attack_config("word", seed=0),
    )
    neighbours = EmbeddingNeighbours.from_model(model, tok)
    edits = [e for r in results for e in r.edits]
    assert edits  # some clean-correct item was attacked
    for e in edits:
        assert e.kind == "word" and e.new.lower() in {n.lower() for n in neighbours.neighbours(e.old, 3)}

    result = dim.run(ModelEvaluator(name="w", model=model, tokenizer=tok, info={}), spans, seed=0)
    word = result.details["attacks"]["word"]
    assert "skipped" not in word and word["n"] == 9.0
    assert result.metrics["robust_acc_word"] == pytest.approx(sum(r.adv_correct for r in results) / 9)
    assert result.metrics["robust_acc_word"] <= result.metrics["clean_acc"]
    # the attacked set, scored again in batches, agrees with the attack's own verdicts
    assert word["rescored_accuracy"] == pytest.approx(result.metrics["robust_acc_word"])
    again = dim.run(ModelEvaluator(name="w", model=model, tokenizer=tok, info={}), spans, seed=0)
    assert again.metrics == result.metrics  # deterministic under the seed
    # the report's audit sample: successful attacks only, with the choice names before/after and gold
    by_id = {s.id: s for s in spans}
    successes = [r for r in results if r.success]
    assert successes  # the tiny model is fooled at least once, so the sample is not vacuous
    assert len(word["examples"]) == min(5, len(successes))
    for ex in word["examples"]:
        item = by_id[ex["key"]]
        assert ex["success"] and ex["gold"] == item.choices[item.label] == ex["before"]
        assert ex["after"] != ex["gold"] and ex["perturbed"] != ex["original"]
