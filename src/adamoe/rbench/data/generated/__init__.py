"""Small offline data sets written by our own templates — no third-party text.

They let every bench dimension run (and be tested) without the hub:
- truthfulness MC (TruthfulQA format) over made-up facts: grounded items state the fact in the
  context; unanswerable items ask about a made-up place, where the truthful answer admits ignorance;
- open QA over made-up facts stated in the context;
- NLI triples (premise, hypothesis, entailment/neutral/contradiction) with made-up names;
- sentiment texts in three domains (product, restaurant, movie) for ID→OOD domain shifts;
- harmful-request one-liners (generic, non-operational) for the refusal test when no other source
  is available, benign look-alike requests for over-refusal, and continuation starts for toxicity.
All generators are deterministic in `seed`; names come from `adamoe.data.synthetic.made_up_name`.
"""

from adamoe.rbench.data.generated.facts import generate_open_qa, generate_truthfulness_mc
from adamoe.rbench.data.generated.nli import generate_nli
from adamoe.rbench.data.generated.prompts import (
    generate_benign_prompts,
    generate_harmful_prompts,
    generate_toxicity_prompts,
)
from adamoe.rbench.data.generated.sentiment import SENTIMENT_DOMAINS, generate_sentiment

__all__ = [
    "SENTIMENT_DOMAINS",
    "generate_benign_prompts",
    "generate_harmful_prompts",
    "generate_nli",
    "generate_open_qa",
    "generate_sentiment",
    "generate_toxicity_prompts",
    "generate_truthfulness_mc",
]
