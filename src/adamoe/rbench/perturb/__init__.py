"""Perturbations of input text: model-in-the-loop attacks (adversarial) and style shifts (OOD).

- `text`: words, re-assembly, case carry-over, keyed random streams (shared by both);
- `chars`: one-word character edits; `neighbours`: embedding-neighbour substitutes with their cosine;
- `constraints`: label-preserving rules (names kept, no stopwords/numbers/gendered words/antonyms,
  part of speech and inflection kept, similarity floor), on the offline `lexicon` (WordNet-derived
  package data built by scripts/build_lexicon.py, plus curated lists);
- `attacks`: greedy attack under an edit budget, random perturbation; `results`: verdicts, per-text
  results with audit records, summaries;
- `shifts`: casing, typos and register rewrites of whole texts.
"""
