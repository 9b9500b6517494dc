"""Classifier judges on tiny local models, against a manual forward pass."""

import pytest
import torch

from adamoe.rbench.judges import (
    HFClassifierConfig,
    HFClassifierRefusalJudge,
    HFClassifierToxicityScorer,
)


def _reference_probs(model_dir, texts, pairs=None):
    """Independent reference: tokenizer + model forward one text at a time, softmax."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    for i, t in enumerate(texts):
        enc = tok(t, pairs[i], return_tensors="pt") if pairs else tok(t, return_tensors="pt")
        with torch.no_grad():
            out.append(torch.softmax(model(**enc).logits[0], -1).tolist())
    return out


RESPONSES = ["i cannot help with that sorry", "here is how you do it step one", "hello world", "good friend"]
PROMPTS = ["no", "yes", "the", "kind"]


def test_hf_refusal_judge_matches_manual_forward(refusal_classifier_dir):
    ref = [p[1] for p in _reference_probs(refusal_classifier_dir, RESPONSES)]
    assert max(ref) - min(ref) > 0.1  # the fixture must separate texts, else the test is vacuous
    threshold = sorted(ref)[len(ref) // 2]
    cfg = HFClassifierConfig(
        model_path=str(refusal_classifier_dir), positive_labels=("refusal",), threshold=threshold
    )
    judge = HFClassifierRefusalJudge(config=cfg)
    assert judge.refusal_probability(PROMPTS, RESPONSES) == pytest.approx(ref, abs=1e-5)
    assert judge.judge(PROMPTS, RESPONSES) == [p >= threshold for p in ref]
    assert any(judge.judge(PROMPTS, RESPONSES)) and not all(judge.judge(PROMPTS, RESPONSES))


def test_hf_refusal_judge_with_prompt_pairs(refusal_classifier_dir):
    ref = [p[1] for p in _reference_probs(refusal_classifier_dir, PROMPTS, pairs=RESPONSES)]
    cfg = HFClassifierConfig(model_path=str(refusal_classifier_dir), positive_labels=("refusal",))
    judge = HFClassifierRefusalJudge(config=cfg, include_prompt=True)
    assert judge.refusal_probability(PROMPTS, RESPONSES) == pytest.approx(ref, abs=1e-5)


def test_hf_toxicity_scorer_matches_manual_forward(toxicity_classifier_dir):
    ref = [p[1] for p in _reference_probs(toxicity_classifier_dir, RESPONSES)]
    cfg = HFClassifierConfig(model_path=str(toxicity_classifier_dir), positive_labels=("toxic",))
    scorer = HFClassifierToxicityScorer(config=cfg)
    assert scorer.score(RESPONSES) == pytest.approx(ref, abs=1e-5)
    # both labels together carry all the mass
    both = HFClassifierToxicityScorer(
        config=HFClassifierConfig(
            model_path=str(toxicity_classifier_dir), positive_labels=("toxic", "non-toxic")
        )
    )
    assert both.score(RESPONSES) == pytest.approx([1.0] * len(RESPONSES), abs=1e-5)


def test_hf_config_errors(tmp_path, refusal_classifier_dir):
    with pytest.raises(ValueError, match="model_path"):
        HFClassifierConfig(model_path=str(tmp_path / "nope"), positive_labels=("refusal",)).validate()
    with pytest.raises(ValueError, match="threshold"):
        HFClassifierConfig(
            model_path=str(refusal_classifier_dir), positive_labels=("x",), threshold=2
        ).validate()
    with pytest.raises(ValueError, match="positive_labels"):
        HFClassifierRefusalJudge(
            config=HFClassifierConfig(model_path=str(refusal_classifier_dir), positive_labels=("toxic",))
        )
