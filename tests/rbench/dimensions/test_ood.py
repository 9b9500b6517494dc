"""OOD fine-tuning trains a copy on a separate ID set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch

from adamoe.rbench.evaluator import ModelCall, ModelEvaluator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_ood_finetune_trains_a_copy_on_a_separate_id_set(mixtral) -> None:
    from adamoe.rbench.data.formats import text_label_to_mc
    from adamoe.rbench.data.generated import generate_sentiment
    from adamoe.rbench.dimensions.ood import TRAIN_SEED_OFFSET, OODConfig, OODDimension

    model, tok, info = mixtral
    calls: list[tuple[Any, ...]] = []

    def stub(m: torch.nn.Module, t: Any, pairs: Sequence[Any], config: Any) -> None:
        calls.append((m, list(pairs), config))
        with torch.no_grad():
            m.lm_head.weight.zero_()  # a "trained" model that cannot tell the classes apart

    cfg = OODConfig(
        finetune=True,
        train={"max_steps": 1},
        train_n=6,
        shifts=["upper"],
        id="generated:product",
        sets=[],
        pairs={},
    )
    dim = OODDimension(cfg, train_fn=stub)
    data = dim.load(limit=4, seed=0)
    before = model.lm_head.weight.detach().clone()
    seen: list[ModelCall] = []
    ev = ModelEvaluator(name="m", model=model, tokenizer=tok, info=info, on_call=seen.append)
    result = dim.run(ev, data, seed=0)

    ((trained, pairs, config),) = calls
    assert trained is not model and torch.equal(model.lm_head.weight, before)  # the original is untouched
    expected = generate_sentiment(6, seed=TRAIN_SEED_OFFSET, domain="product")  # not the evaluated seed
    assert [p.context for p in pairs] == [text_label_to_mc(it).context for it in expected]
    assert config.max_steps == 1 and config.trainable == "full"
    assert {c.model for c in seen if c.kind == "score"} == {"m+ood-ft"}  # scored on the trained copy
    assert result.metrics["id_acc"] == 0.5  # zero logits: choices tie, argmax picks label 0 of 0/1
    with pytest.raises(ValueError, match="max_steps"):
        OODDimension(OODConfig(finetune=True, train={"max_steps": 0}))
