"""Hub task specs: where each benchmark lives and how one raw row becomes an :class:`MCExample`.

Prompts follow lm-eval-harness 0.4 zero-shot templates so that accuracies are comparable with
published lm-eval numbers; field names follow the hub schemas of each dataset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adamoe.data.examples import MCExample

__all__ = ["HUB_TASKS", "TaskSpec", "get_hub_task"]

RowMapper = Callable[[Mapping[str, Any], int], MCExample]


@dataclass(kw_only=True)
class TaskSpec:
    """A benchmark on the hub: path, config, default split and the row -> example mapping."""

    name: str
    hub_path: str
    hub_name: str | None
    split: str
    to_example: RowMapper
    keep: Callable[[Mapping[str, Any]], bool] | None = None  # rows to drop before mapping (e.g. image rows)
    description: str = ""

    def validate(self) -> TaskSpec:
        """Check name, hub path, split and mapper; returns ``self`` so specs validate where listed."""
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"TaskSpec.name: expected a non-empty string, got {self.name!r}")
        if not self.hub_path or "/" not in self.hub_path:
            raise ValueError(
                f"TaskSpec.hub_path ({self.name}): expected 'owner/dataset', got {self.hub_path!r}"
            )
        if not self.split:
            raise ValueError(f"TaskSpec.split ({self.name}): expected a split name, got {self.split!r}")
        if not callable(self.to_example):
            raise ValueError(f"TaskSpec.to_example ({self.name}): expected a callable row -> MCExample")
        return self

    def map_rows(self, rows: list[Mapping[str, Any]], *, where: str) -> list[MCExample]:
        """Map raw rows, turning a schema mismatch into a one-line error naming the field and source."""
        out: list[MCExample] = []
        for i, row in enumerate(rows):
            if self.keep is not None and not self.keep(row):
                continue
            try:
                out.append(self.to_example(row, i))
            except KeyError as exc:
                key = exc.args[0] if exc.args else None
                if isinstance(key, str) and key not in row:
                    raise ValueError(
                        f"{where}: row {i} has no field {key!r} expected by task {self.name!r}; "
                        f"fields present: {', '.join(sorted(map(str, row)))}"
                    ) from None
                raise ValueError(
                    f"{where}: row {i} of task {self.name!r} has an unexpected value {key!r}"
                ) from None
            except (ValueError, IndexError, TypeError, AttributeError) as exc:
                # e.g. an unlabeled test split ("" labels) or an answer key absent from the choices
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ValueError(
                    f"{where}: row {i} of task {self.name!r} cannot be mapped ({reason})"
                ) from None
        return out


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
        id=_row_id(row, "hellaswag", index, key="ind"),
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


def _text_only(row: Mapping[str, Any]) -> bool:
    return row.get("image") is None


def _specs() -> dict[str, TaskSpec]:
    specs = [
        *(
            TaskSpec(
                name=name,
                hub_path="allenai/ai2_arc",
                hub_name=subset,
                split="test",
                to_example=_letter_choices(name),
            )
            for name, subset in (("arc_easy", "ARC-Easy"), ("arc_challenge", "ARC-Challenge"))
        ),
        TaskSpec(name="piqa", hub_path="baber/piqa", hub_name=None, split="validation", to_example=_piqa),
        # lm-eval reads SocialIQA (social_i_qa) from this script-free copy; same schema.
        TaskSpec(name="siqa", hub_path="lighteval/siqa", hub_name=None, split="validation", to_example=_siqa),
        TaskSpec(
            name="winogrande",
            hub_path="allenai/winogrande",
            hub_name="winogrande_xl",
            split="validation",
            to_example=_winogrande,
        ),
        TaskSpec(
            name="hellaswag",
            hub_path="Rowan/hellaswag",
            hub_name=None,
            split="validation",
            to_example=_hellaswag,
        ),
        TaskSpec(
            name="openbookqa",
            hub_path="allenai/openbookqa",
            hub_name="main",
            split="test",
            to_example=_letter_choices("openbookqa"),
        ),
        TaskSpec(name="rte", hub_path="nyu-mll/glue", hub_name="rte", split="validation", to_example=_rte),
        TaskSpec(name="cola", hub_path="nyu-mll/glue", hub_name="cola", split="validation", to_example=_cola),
        TaskSpec(
            name="scienceqa",
            hub_path="derek-thomas/ScienceQA",
            hub_name=None,
            split="test",
            to_example=_scienceqa,
            keep=_text_only,
            description="text-only rows (image is None)",
        ),
        TaskSpec(
            name="commonsense_qa",
            hub_path="tau/commonsense_qa",
            hub_name=None,
            split="validation",
            to_example=_commonsense_qa,
        ),
    ]
    return {s.name: s.validate() for s in specs}


HUB_TASKS: dict[str, TaskSpec] = _specs()


def get_hub_task(name: str) -> TaskSpec | None:
    """The spec for ``name`` (case and ``-``/``_`` insensitive), or None."""
    return HUB_TASKS.get(name.strip().lower().replace("-", "_"))
