"""Row -> :class:`MCExample` mappers, one per benchmark schema, each building lm-eval 0.4.13's prompt.

Every mapper reproduces its lm-eval task config (``doc_to_text``, ``doc_to_choice``, ``doc_to_target``
and, for MMLU, the ``description``) on one raw row in the hub schema, which is also the schema of the
offline ``save_to_disk`` copies. ``tests/data/test_mappers.py`` applies lm-eval's own YAML and helper
functions to the same rows and compares item by item.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from adamoe.data.examples import MCExample
from adamoe.data.splits import item_key

__all__ = ["MAPPERS", "MMLU_SUBJECTS", "RowMapper", "mmlu_mapper"]

RowMapper = Callable[[Mapping[str, Any], int], MCExample]


def _row_id(row: Mapping[str, Any], task: str, index: int, key: str = "id") -> str:
    value = row.get(key)
    return f"{task}-{value}" if value not in (None, "") else f"{task}-{index}"


def _letter_choices(task: str) -> RowMapper:
    """ARC / OpenBookQA rows: ``choices = {text: [...], label: [...]}`` with an ``answerKey`` label."""
    question_key = "question" if task.startswith("arc") else "question_stem"

    def to_example(row: Mapping[str, Any], index: int) -> MCExample:
        choices = row["choices"]
        key = str(row["answerKey"]).strip()
        question = row[question_key]
        context = f"Question: {question}\nAnswer:" if task.startswith("arc") else question
        return MCExample(
            id=_row_id(row, task, index),
            context=context,
            choices=list(choices["text"]),
            label=list(choices["label"]).index(key),
            task=task,
        )

    return to_example


def _piqa(row: Mapping[str, Any], index: int) -> MCExample:
    return MCExample(
        id=f"piqa-{index}",
        context=f"Question: {row['goal']}\nAnswer:",
        choices=[row["sol1"], row["sol2"]],
        label=int(row["label"]),
        task="piqa",
    )


def _siqa(row: Mapping[str, Any], index: int) -> MCExample:
    return MCExample(
        id=f"siqa-{index}",
        context=f"Q: {row['context']} {row['question']}\nA:",
        choices=[row["answerA"], row["answerB"], row["answerC"]],
        label=int(row["label"]) - 1,  # the hub stores "1".."3"
        task="siqa",
    )


def _winogrande(row: Mapping[str, Any], index: int) -> MCExample:
    # Partial scoring: the option fills the blank, the text after the blank is what gets scored.
    sentence = row["sentence"]
    blank = sentence.index("_")
    answer = str(row["answer"])
    if answer not in ("1", "2"):  # the hub's test split hides its answers as ""
        raise ValueError(f"answer {answer!r} is not '1' or '2'")
    return MCExample(
        id=f"winogrande-{index}",
        context=sentence[:blank],
        choices=[row["option1"], row["option2"]],
        label=int(answer) - 1,
        task="winogrande",
        continuation=sentence[blank + 1 :].strip(),
    )


_BRACKETED = re.compile(r"\[.*?\]")


def _hellaswag_clean(text: str) -> str:
    # WikiHow rows carry "[title]"-style markup; lm-eval strips it the same way before scoring.
    text = text.strip().replace(" [title]", ". ")
    return _BRACKETED.sub("", text).replace("  ", " ")


def _hellaswag(row: Mapping[str, Any], index: int) -> MCExample:
    ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    return MCExample(
        id=f"hellaswag-{index}",  # the dataset's ``ind`` repeats (433 of 10,042 validation rows)
        context=_hellaswag_clean(row["activity_label"] + ": " + ctx),
        choices=[_hellaswag_clean(e) for e in row["endings"]],
        label=int(row["label"]),
        task="hellaswag",
    )


def _glue(task: str, template: str, choices: list[str]) -> RowMapper:
    """GLUE rows: ``template`` formatted with the row's fields, an ``idx`` id and an int ``label``."""

    def to_example(row: Mapping[str, Any], index: int) -> MCExample:
        return MCExample(
            id=_row_id(row, task, index, key="idx"),
            context=template.format(**row),
            choices=list(choices),
            label=int(row["label"]),
            task=task,
        )

    return to_example


# label 0 = entailment
_rte = _glue("rte", "{sentence1}\nQuestion: {sentence2} True or False?\nAnswer:", ["True", "False"])
# label 1 = acceptable
_cola = _glue("cola", "{sentence}\nQuestion: Does this sentence make sense?\nAnswer:", ["no", "yes"])


def _scienceqa(row: Mapping[str, Any], index: int) -> MCExample:
    hint = (row.get("hint") or "").strip()
    question = row["question"].strip()
    context = f"Context: {hint}\nQuestion: {question}\nAnswer:" if hint else f"Question: {question}\nAnswer:"
    return MCExample(
        id=f"scienceqa-{index}",
        context=context,
        choices=list(row["choices"]),
        label=int(row["answer"]),
        task="scienceqa",
    )


_LETTERS = "ABCDEFGHIJ"


def _commonsense_qa(row: Mapping[str, Any], index: int) -> MCExample:
    texts = list(row["choices"]["text"])
    letters = list(row["choices"].get("label") or _LETTERS[: len(texts)])
    listing = "\n".join(f"{letter}. {text}" for letter, text in zip(letters, texts))
    return MCExample(
        id=_row_id(row, "commonsense_qa", index),
        context=f"Question: {row['question'].strip()}\n{listing}\nAnswer:",
        choices=letters,
        label=letters.index(str(row["answerKey"]).strip()),
        task="commonsense_qa",
    )


def _boolq(row: Mapping[str, Any], index: int) -> MCExample:
    # SuperGLUE (lm-eval's source) stores an int ``label``; google/boolq (the offline copy) a bool ``answer``.
    label = int(row["label"]) if "label" in row else int(bool(row["answer"]))
    return MCExample(
        id=_row_id(row, "boolq", index, key="idx"),
        context=f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:",
        choices=["no", "yes"],
        label=label,
        task="boolq",
    )


def _sciq(row: Mapping[str, Any], index: int) -> MCExample:
    return MCExample(
        id=f"sciq-{index}",
        context=f"{row['support'].lstrip()}\nQuestion: {row['question']}\nAnswer:",
        choices=[row["distractor1"], row["distractor2"], row["distractor3"], row["correct_answer"]],
        label=3,
        task="sciq",
    )


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


def _copa(row: Mapping[str, Any], index: int) -> MCExample:
    # lm-eval drops the premise's final character (its period) and joins with a connector; its choices
    # carry a leading space *and* get the target delimiter, so each continuation starts with two spaces.
    connector = {"cause": "because", "effect": "therefore"}[row["question"]]
    return MCExample(
        id=_row_id(row, "copa", index, key="idx"),
        context=row["premise"].strip()[:-1] + f" {connector}",
        choices=[" " + _lower_first(row["choice1"]), " " + _lower_first(row["choice2"])],
        label=int(row["label"]),
        task="copa",
    )


_sst2 = _glue(
    "sst2", "{sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:", ["negative", "positive"]
)
_mrpc = _glue(
    "mrpc",
    "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nQuestion: Do both sentences mean the same thing?\nAnswer:",
    ["no", "yes"],
)
_cb = _glue(
    "cb", "{premise}\nQuestion: {hypothesis}. True, False, or Neither?\nAnswer:", ["True", "False", "Neither"]
)

MMLU_SUBJECTS: tuple[str, ...] = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine",
    "college_physics", "computer_security", "conceptual_physics", "econometrics", "electrical_engineering",
    "elementary_mathematics", "formal_logic", "global_facts", "high_school_biology",
    "high_school_chemistry", "high_school_computer_science", "high_school_european_history",
    "high_school_geography", "high_school_government_and_politics", "high_school_macroeconomics",
    "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history",
    "high_school_world_history", "human_aging", "human_sexuality", "international_law", "jurisprudence",
    "logical_fallacies", "machine_learning", "management", "marketing", "medical_genetics",
    "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition", "philosophy", "prehistory",
    "professional_accounting", "professional_law", "professional_medicine", "professional_psychology",
    "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology",
    "world_religions",
)  # fmt: skip


def mmlu_mapper(subject: str) -> RowMapper:
    """MMLU rows (question, choices[4], answer index) with lm-eval's zero-shot description prefix."""
    task = f"mmlu_{subject}"
    description = (
        f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    )

    def to_example(row: Mapping[str, Any], index: int) -> MCExample:
        c = list(row["choices"])
        body = f"{row['question'].strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:"
        return MCExample(
            id=f"{task}-{item_key(body, c)[:12]}",  # unique across MMLU's dev/validation/test splits
            context=description + body,
            choices=["A", "B", "C", "D"],
            label=int(row["answer"]),
            task=task,
        )

    return to_example


MAPPERS: dict[str, RowMapper] = {
    "arc_easy": _letter_choices("arc_easy"),
    "arc_challenge": _letter_choices("arc_challenge"),
    "openbookqa": _letter_choices("openbookqa"),
    "piqa": _piqa,
    "siqa": _siqa,
    "winogrande": _winogrande,
    "hellaswag": _hellaswag,
    "rte": _rte,
    "cola": _cola,
    "scienceqa": _scienceqa,
    "commonsense_qa": _commonsense_qa,
    "boolq": _boolq,
    "sciq": _sciq,
    "copa": _copa,
    "sst2": _sst2,
    "mrpc": _mrpc,
    "cb": _cb,
}
"""The mapper of every non-MMLU task, by task name (MMLU: :func:`mmlu_mapper`)."""
