"""The zero-shot pilot that chooses the experiment tasks: dense SmolLM2 on every candidate's validation split.

Why a pilot: on most BIG-bench tasks a 135M model is at chance, and an "AdaMoE keeps accuracy at lower
load" comparison means nothing where there is no accuracy to keep. So, among the tasks meeting
:func:`adamoe.data.bigbench.paper_criteria`, the experiments take per category the ones on which the
*dense base model* (never an MoE variant, so the rule cannot favour either side of the AdaMoE-vs-top-k
comparison) beats chance by the widest margin on the *validation* split (so the test split that the
tables report stays untouched by the choice).

Measured 2026-11-25 with (n = the validation items, at most 100; accuracy by raw log-likelihood argmax):

    adamoe eval --offline --model smollm2 --set split=validation --limit 100 --run-dir runs/pilot-validation \
      --task bigbench:<each candidate>

The figures are frozen here so that the choice is reproducible without re-running the pilot;
``scripts/pilot_tasks.py`` recomputes them from a pilot run directory.
"""

from __future__ import annotations

__all__ = ["PILOT_VALIDATION"]

PILOT_VALIDATION: dict[str, tuple[int, float, float]] = {
    # task: (n, accuracy %, chance %) on the validation split, dense SmolLM2-135M-Instruct, zero-shot
    "epistemic_reasoning": (100, 57.0, 50.0),
    "goal_step_wikihow": (100, 37.0, 39.2),
    "hyperbaton": (100, 48.0, 50.0),
    "implicatures": (49, 40.8, 50.0),
    "logical_fallacy_detection": (100, 61.0, 50.0),
    "metaphor_boolean": (68, 66.2, 50.0),
    "movie_dialog_same_or_different": (100, 57.0, 50.0),
    "presuppositions_as_nli": (73, 37.0, 33.3),
    "social_iqa": (100, 39.0, 33.5),
    "sports_understanding": (99, 53.5, 50.0),
    "strategyqa": (100, 55.0, 50.0),
    "temporal_sequences": (100, 26.0, 25.0),
    "formal_fallacies_syllogisms_negation": (100, 53.0, 50.0),
    "vitaminc_fact_verification": (100, 41.0, 33.3),
    "winowhy": (100, 44.0, 50.0),
}
