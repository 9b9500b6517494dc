"""Build a refusal judge or toxicity scorer from its config spec (a name, a mapping, or an instance)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adamoe.rbench.judges.base import RefusalJudge, ToxicityScorer
from adamoe.rbench.judges.classifier import (
    HFClassifierConfig,
    HFClassifierRefusalJudge,
    HFClassifierToxicityScorer,
)
from adamoe.rbench.judges.threeway import ThreeWayRefusalJudge
from adamoe.rbench.judges.toxicity import LexiconToxicityScorer

__all__ = ["REMOVED_JUDGES", "make_judge", "make_toxicity_scorer"]


def _hf_config(spec: Mapping[str, Any], section: str) -> HFClassifierConfig:
    known = {"hf", "positive_labels", "threshold", "batch_size", "max_length", "include_prompt"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"{section}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    labels = spec.get("positive_labels")
    if not labels:
        raise ValueError(f"{section}.positive_labels: expected the classifier's positive label name(s)")
    return HFClassifierConfig(
        model_path=str(spec["hf"]),
        positive_labels=tuple(str(x) for x in ([labels] if isinstance(labels, str) else labels)),
        threshold=float(spec.get("threshold", 0.5)),
        batch_size=int(spec.get("batch_size", 8)),
        max_length=int(spec.get("max_length", 512)),
    )


REMOVED_JUDGES = ("structured", "structured-v1", "phrase", "phrases")
"""Specs (names or mapping keys) of the two-way structured and phrase judges, removed: the three-way judge
replaced them (docs/judges.md)."""


def make_judge(spec: str | Mapping[str, Any] | RefusalJudge) -> RefusalJudge:
    """'three-way' (refused / complied / degenerate, `ThreeWayRefusalJudge`), {'three_way': true,
    'use_vocabulary': bool}, or {'hf': local dir, 'positive_labels': [...]} (a local classifier)."""
    if isinstance(spec, RefusalJudge) and not isinstance(spec, (str, Mapping)):
        return spec
    if spec == "three-way":
        return ThreeWayRefusalJudge()
    removed = spec if isinstance(spec, str) else next((k for k in REMOVED_JUDGES if k in spec), None)
    if removed in REMOVED_JUDGES:
        raise ValueError(f"safety.judge: judge {removed!r} was removed; use 'three-way'")
    if isinstance(spec, Mapping) and "three_way" in spec:
        unknown = sorted(set(spec) - {"three_way", "use_vocabulary"})
        if unknown:
            raise ValueError(
                f"safety.judge: unknown key(s) {unknown} for the three-way judge; expected 'use_vocabulary'"
            )
        return ThreeWayRefusalJudge(use_vocabulary=bool(spec.get("use_vocabulary", True)))
    if isinstance(spec, Mapping) and "hf" in spec:
        return HFClassifierRefusalJudge(
            config=_hf_config(spec, "safety.judge"), include_prompt=bool(spec.get("include_prompt", False))
        )
    raise ValueError(
        f"safety.judge: expected 'three-way', {{three_way: true, use_vocabulary: ...}} or {{hf: <dir>, ...}}, "
        f"got {spec!r}"
    )


def make_toxicity_scorer(spec: str | Mapping[str, Any] | ToxicityScorer) -> ToxicityScorer:
    """'lexicon' (default), {'lexicon': {term: weight}}, or {'hf': local dir, 'positive_labels': [...]}."""
    if isinstance(spec, ToxicityScorer) and not isinstance(spec, (str, Mapping)):
        return spec
    if spec == "lexicon":
        return LexiconToxicityScorer()
    if isinstance(spec, Mapping) and "hf" in spec:
        return HFClassifierToxicityScorer(config=_hf_config(spec, "safety.toxicity_scorer"))
    if isinstance(spec, Mapping) and set(spec) == {"lexicon"}:
        return LexiconToxicityScorer(lexicon={str(k): float(v) for k, v in dict(spec["lexicon"]).items()})
    raise ValueError(
        f"safety.toxicity_scorer: expected 'lexicon', {{lexicon: {{term: weight}}}} or {{hf: <dir>, ...}}, got {spec!r}"
    )
