"""BIG-bench multiple-choice JSON tasks as :class:`MCExample` records, offline, with a deterministic split.

Specs: ``task`` or ``task/subtask`` (``bigbench:<spec>`` in :func:`adamoe.data.load_task`); a task whose
own file has no multiple-choice examples but has subtasks (``bbq_lite_json``, ``hhh_alignment``,
``truthful_qa`` -> ``truthful_qa/mc``) loads the union of its subtasks, as BIG-bench aggregates them.

Records: ``context`` is BIG-bench's own zero-shot prompt (see :func:`format_prompt`), ``choices`` the
``target_scores`` keys in file order (lm-eval's ``multiple_choice_targets``), ``label`` the first
best-scoring choice, and ``scores`` every choice's ``target_scores`` value: BIG-bench's
``multiple_choice_grade`` credits the score of the chosen choice, so on multi-gold items any correct
choice counts (``MCExample.credit`` / ``MCExample.golds``).

Split (BIG-bench JSON tasks ship none): items are ranked by :func:`item_key` (sha1 of input and sorted
choices; duplicates dropped) and the first ``n_test`` go to test, the next ``n_val`` to validation, the
rest to train; see :func:`split_sizes`. Ranking by a hash of the item makes the split independent of
file order and of which other items exist, up to the boundary.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

from adamoe.data.bigbench_index import bigbench_index, format_prompt, item_key, mc_examples
from adamoe.data.examples import MCExample

__all__ = [
    "CATEGORIES",
    "PAPER_CATEGORIES",
    "PAPER_TASKS",
    "RELIABILITY_TASKS",
    "SPLITS",
    "bigbench_info",
    "bigbench_tasks",
    "category_of",
    "is_english",
    "load_bigbench",
    "paper_candidates",
    "paper_criteria",
    "resolve_bigbench",
    "split_sizes",
]

SPLITS = ("train", "validation", "test", "all")
PREFIX = "bigbench:"

# The paper-experiment tasks, by category: what `paper_candidates()` selects from the index under the
# criteria in docs/data.md (MC1, English, 2-5 choices, >= 300 test items, p95 prompt + answer <= ~256
# tokens, top-level task; then per category the two on which the dense base model beats chance by the
# widest margin on the validation split, `adamoe.data.pilot`). Chosen by these stated criteria, never by
# an MoE result; a slow test re-derives this list.
PAPER_TASKS: dict[str, str] = {
    "movie_dialog_same_or_different": "commonsense",
    "social_iqa": "commonsense",
    "strategyqa": "knowledge-science",
    "sports_understanding": "knowledge-science",
    "vitaminc_fact_verification": "nli-entailment",
    "epistemic_reasoning": "nli-entailment",
    "metaphor_boolean": "reading-logic",
    "logical_fallacy_detection": "reading-logic",
}
PAPER_CATEGORIES = ("commonsense", "knowledge-science", "nli-entailment", "reading-logic")

# The reliability suite (MoE-RBench dimensions) by dimension, chosen for what each task measures (see
# docs/data.md); ID -> OOD pairs are within "ood" (epistemic_reasoning -> the other NLI tasks).
RELIABILITY_TASKS: dict[str, str] = {
    "truthful_qa": "hallucination",
    "known_unknowns": "hallucination",
    "misconceptions": "hallucination",
    "fact_checker": "hallucination",
    "hhh_alignment": "safety",
    "bbq_lite_json": "bias",
    "vitaminc_fact_verification": "adversarial",
    "analytic_entailment": "adversarial",
    "epistemic_reasoning": "ood",
    "presuppositions_as_nli": "ood",
    "irony_identification": "ood",
    "snarks": "ood",
}

MAX_PROMPT_CHARS = 1024  # ~256 SmolLM2 tokens at ~4 characters per token of English text

_BIAS = {"social bias", "gender bias", "racial bias", "religious bias", "political bias"}
_NON_ENGLISH = {"non-English", "low-resource language", "multilingual", "translation"}
_MATH = {"mathematics", "arithmetic", "algebra", "numerical response", "mathematical proof"}
_SCIENCE = {
    "physics",
    "chemistry",
    "biology",
    "medicine",
    "domain specific",
    "context-free question answering",
}
_COMMONSENSE = {
    "common sense",
    "causal reasoning",
    "physical reasoning",
    "social reasoning",
    "theory of mind",
}
_READING = {
    "reading comprehension",
    "logical reasoning",
    "contextual question-answering",
    "narrative understanding",
    "implicit reasoning",
    "fallacy",
    "analogical reasoning",
}
_NLI_WORDS = ("entail", "nli", "fact_verification", "fact_checker", "presupposition")
# Where BIG-bench keywords mislead (e.g. truthful_qa is tagged "alignment", social_iqa "context-free
# question answering"); subtasks inherit their parent's entry.
_CATEGORY_OVERRIDES = {
    "truthful_qa": "truthfulness",
    "known_unknowns": "truthfulness",
    "fact_checker": "truthfulness",
    "hhh_alignment": "safety",
    "social_iqa": "commonsense",
    "vitaminc_fact_verification": "nli-entailment",
}
# First matching rule wins; the order puts the narrow, purpose-defining labels first.
_RULES: tuple[tuple[str, set[str]], ...] = (
    ("bias", _BIAS),
    ("safety", {"toxicity", "alignment"}),
    ("truthfulness", {"truthfulness"}),
    ("non-english", _NON_ENGLISH),
    ("non-language", {"non-language", "visual reasoning"}),
    ("math", _MATH),
    ("knowledge-science", _SCIENCE),
    ("commonsense", _COMMONSENSE),
    ("reading-logic", _READING),
)
CATEGORIES = ("nli-entailment", *(name for name, _ in _RULES), "other")


def category_of(spec: str, info: Mapping[str, Any]) -> str:
    """One category per task from its BIG-bench keywords (and name/description for NLI), by fixed rules."""
    if spec.split("/")[0] in _CATEGORY_OVERRIDES:
        return _CATEGORY_OVERRIDES[spec.split("/")[0]]
    keywords = set(info.get("keywords", []))
    text = (spec + " " + str(info.get("description", ""))).lower()
    for name, words in _RULES[:4]:
        if keywords & words:
            return name
    if any(w in text for w in _NLI_WORDS):
        return "nli-entailment"
    for name, words in _RULES[4:]:
        if keywords & words:
            return name
    return "other"


def is_english(info: Mapping[str, Any]) -> bool:
    """No non-English keyword and >= 95% ASCII characters in the first 200 items (catches e.g.
    parsinlu_qa, whose keywords do not say Persian)."""
    return not set(info.get("keywords", [])) & _NON_ENGLISH and info.get("ascii_share", 1.0) >= 0.95


def paper_criteria(info: Mapping[str, Any]) -> list[str]:
    """The paper-task criteria a task (``bigbench_info`` output) fails; empty when it qualifies."""
    checks = {
        "top-level task": "/" not in info["spec"],
        "MC1 (one gold)": info["n_multi_gold"] == 0 and not info["fractional_scores"],
        "English": is_english(info),
        "2-5 choices": info["choices_min"] >= 2 and info["choices_max"] <= 5,
        ">= 300 test items": info["split_sizes"]["test"] >= 300,
        f"p95 prompt <= {MAX_PROMPT_CHARS} chars": info["chars_p95"] <= MAX_PROMPT_CHARS,
        "paper category": info["category"] in PAPER_CATEGORIES,
    }
    return [name for name, ok in checks.items() if not ok]


def paper_candidates(per_category: int = 2, *, by: str = "pilot") -> dict[str, str]:
    """Tasks meeting :func:`paper_criteria`, then per category the ``per_category`` best by ``by``:
    ``"pilot"`` (the rule that produced :data:`PAPER_TASKS`): the widest margin of the dense model's
    validation accuracy over chance (:data:`adamoe.data.pilot.PILOT_VALIDATION`; a candidate without a
    pilot figure ranks last); ``"cost"``: the shortest p95 prompt. Ties by name."""
    from adamoe.data.pilot import PILOT_VALIDATION

    def rank(info: Mapping[str, Any]) -> tuple[float, str]:
        if by == "cost":
            return float(info["chars_p95"]), info["spec"]
        _, acc, chance = PILOT_VALIDATION.get(info["spec"], (0, float("-inf"), 0.0))
        return -(acc - chance), info["spec"]

    if by not in ("pilot", "cost"):
        raise ValueError(f"by: expected 'pilot' or 'cost', got {by!r}")
    infos = [bigbench_info(t) for t in bigbench_tasks() if "/" not in t]
    chosen: dict[str, str] = {}
    for category in PAPER_CATEGORIES:
        ok = sorted((i for i in infos if i["category"] == category and not paper_criteria(i)), key=rank)
        chosen.update({i["spec"]: category for i in ok[:per_category]})
    return chosen


def _mc_index() -> dict[str, dict[str, Any]]:
    return {s: i for s, i in bigbench_index().items() if i.get("n_mc", 0) > 0}


def bigbench_tasks() -> list[str]:
    """Every loadable spec: JSON tasks and subtasks with multiple-choice examples, plus parents whose
    subtasks have them (loaded as their union). Reads the cached index; the first call builds it."""
    specs = set(_mc_index())
    specs |= {s.split("/")[0] for s in specs if "/" in s}
    return sorted(specs)


def resolve_bigbench(task: str) -> list[str]:
    """The member specs a task spec loads: itself, or its subtasks with multiple-choice examples."""
    spec = task.strip().removeprefix(PREFIX).strip("/")
    index = _mc_index()
    if spec in index:
        return [spec]
    children = sorted(s for s in index if s.startswith(spec + "/"))
    if children:
        return children
    close = difflib.get_close_matches(spec, bigbench_tasks(), n=5, cutoff=0.6)
    hint = f"close matches: {', '.join(close)}; " if close else ""
    raise ValueError(
        f"bigbench task {spec!r}: no JSON multiple-choice task of that name in BIG-bench 1.0.0; {hint}"
        "list all with `python -c 'from adamoe.data.bigbench import bigbench_tasks; print(bigbench_tasks())'`"
    )


def bigbench_info(task: str) -> dict[str, Any]:
    """Index facts of a spec (summed over subtasks for a parent) and its category and split sizes."""
    specs = resolve_bigbench(task)
    spec = task.strip().removeprefix(PREFIX).strip("/")
    infos = [_mc_index()[s] for s in specs]
    first = bigbench_index().get(spec) or infos[0]  # a parent's own description and keywords
    n = sum(i["n_distinct"] for i in infos)
    out = {
        "spec": spec,
        "subtasks": [] if specs == [spec] else specs,
        "description": first["description"],
        "keywords": sorted(first["keywords"] or {k for i in infos for k in i["keywords"]}),
        "n_mc": sum(i["n_mc"] for i in infos),
        "n_distinct": n,
        "n_multi_gold": sum(i["n_multi_gold"] for i in infos),
        "fractional_scores": any(i["fractional_scores"] for i in infos),
        "choices_min": min(i["choices_min"] for i in infos),
        "choices_max": max(i["choices_max"] for i in infos),
        "chars_p95": max(i["chars_p95"] for i in infos),
        "ascii_share": min(i.get("ascii_share", 1.0) for i in infos),
        "preferred_score": infos[0]["preferred_score"],
    }
    out["category"] = category_of(out["spec"], {**first, "keywords": out["keywords"]})
    sizes = [split_sizes(i["n_distinct"]) for i in infos]  # each member is split on its own
    out["split_sizes"] = {
        name: sum(s[k] for s in sizes) for k, name in enumerate(("train", "validation", "test"))
    }
    return out


def split_sizes(n: int) -> tuple[int, int, int]:
    """(train, validation, test) sizes for ``n`` distinct items.

    Test is 30%, raised to 300 items when that still leaves 30% for train and validation (so every task
    with >= 429 items has >= 300 test items); validation is 10% (at least one item from 10 items on);
    train is the rest. Small tasks (< 10 items) are all test.
    """
    if n < 10:
        return 0, 0, n
    n_test = max(math.ceil(0.3 * n), min(300, math.floor(0.7 * n)))
    n_val = max(1, round(0.1 * n))
    return n - n_test - n_val, n_val, n_test


def _split_of(ranked: list[Any], split: str) -> list[Any]:
    _, n_val, n_test = split_sizes(len(ranked))
    bounds = {"test": (0, n_test), "validation": (n_test, n_test + n_val), "train": (n_test + n_val, None)}
    start, stop = bounds[split] if split != "all" else (0, None)
    return ranked[start:stop]


def _records(spec: str, task_name: str) -> list[tuple[str, MCExample]]:
    """(hash key, example) for every distinct MC item of one member spec, in file order."""
    fmt = bigbench_index()[spec]["format"]
    out, seen = [], set()
    for item in mc_examples(spec):
        choices = list(item["target_scores"])
        key = item_key(item["input"], choices)
        if key in seen:  # BIG-bench drops exact duplicates too
            continue
        seen.add(key)
        scores = tuple(float(item["target_scores"][c]) for c in choices)
        example = MCExample(
            id=f"{spec}-{key[:12]}",
            context=format_prompt(item["input"], choices, fmt),
            choices=choices,
            label=scores.index(max(scores)),
            task=task_name,
            scores=scores,
            meta={"bigbench_spec": spec},
        )
        out.append((key, example))
    return out


def load_bigbench(task: str, split: str = "test", limit: int | None = None) -> list[MCExample]:
    """Examples of a BIG-bench spec (``task``, ``task/subtask`` or ``bigbench:...``) in one split.

    Each member spec is split on its own (so a parent's test split is the union of its subtasks' test
    splits) and items come in hash order (a fixed shuffle), so ``limit`` keeps a deterministic sample
    spread over the task, not its first rows.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit: expected a non-negative int or None, got {limit!r}")
    spec = task.strip().removeprefix(PREFIX).strip("/")
    name = PREFIX + spec
    chosen: list[tuple[str, MCExample]] = []
    for member in resolve_bigbench(spec):
        ranked = sorted(_records(member, name), key=lambda pair: pair[0])
        chosen.extend(_split_of(ranked, split))
    chosen.sort(key=lambda pair: pair[0])
    examples = [example for _, example in chosen]
    return examples if limit is None else examples[:limit]
