"""Hub task mappings, checked on hand-built rows shaped like each dataset's schema (content made up).

The reference is lm-eval itself: its installed task YAMLs (and helper functions for HellaSwag and
WinoGrande) are applied to the same rows, and our examples must produce the same requests.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from adamoe.data.mappers import MMLU_SUBJECTS
from adamoe.data.tasks import HUB_TASKS, TaskSpec, get_hub_task

pytest.importorskip("lm_eval")
from tests.data.lm_eval_reference import LM_EVAL_YAML, config_path, load_config, reference_requests

ROWS: dict[str, dict[str, Any]] = {
    "arc_easy": {
        "id": "Made_001",
        "question": "Which tool does a gardener zorp use to measure rain?",
        "choices": {"text": ["a cup", "a rain gauge", "a fork", "a kite"], "label": ["A", "B", "C", "D"]},
        "answerKey": "B",
    },
    "arc_challenge": {
        "id": "Made_002",
        "question": "What keeps a blimbo warm in winter?",
        "choices": {"text": ["fur", "scales", "ice"], "label": ["1", "2", "3"]},
        "answerKey": "1",
    },
    "piqa": {
        "goal": "To open a jar of plum jam",
        "sol1": "twist the lid.",
        "sol2": "shout at it.",
        "label": 0,
    },
    "siqa": {
        "context": "Quinlo gave the last apple to a friend.",
        "question": "How would the friend feel?",
        "answerA": "grateful",
        "answerB": "angry",
        "answerC": "sleepy",
        "label": "1",
    },
    "openbookqa": {
        "id": "7-001",
        "question_stem": "A magnet will stick to",
        "choices": {"text": ["wood", "glass", "an iron nail", "paper"], "label": ["A", "B", "C", "D"]},
        "answerKey": "C",
    },
    "rte": {"sentence1": "Tarvo bought a red boat.", "sentence2": "Tarvo owns a boat.", "label": 0, "idx": 7},
    "cola": {"sentence": "The cat quickly sleeps the.", "label": 0, "idx": 3},
    "boolq": {
        "question": "is a zorp heavier than a plum",
        "passage": "A zorp weighs a ton.",
        "label": 1,
        "idx": 4,
    },
    "sst2": {"sentence": "a gloriously odd film . ", "label": 1, "idx": 2},
    "mrpc": {
        "sentence1": "The plum rose 3 points .",
        "sentence2": "A plum gained 3 points .",
        "label": 1,
        "idx": 9,
    },
    "cb": {
        "premise": "Mira said the kite was blue.",
        "hypothesis": "the kite was blue",
        "label": 2,
        "idx": 1,
    },
    "sciq": {
        "question": "What makes a boat float?",
        "distractor1": "magnetism",
        "distractor2": "friction",
        "distractor3": "gravity",
        "correct_answer": "buoyancy",
        "support": "  Buoyancy lifts a boat.",
    },
    "copa": {
        "premise": "The kettle whistled.",
        "choice1": "The water boiled.",
        "choice2": "Tea spilled.",
        "question": "cause",
        "idx": 3,
        "label": 0,
    },
    "mmlu_anatomy": {
        "question": " Which bone is longest? ",
        "subject": "anatomy",
        "choices": ["femur", "ulna", "stapes", "rib"],
        "answer": 0,
    },
    "commonsense_qa": {
        "id": "abc123",
        "question": "Where would you keep a spare blanket? ",
        "question_concept": "blanket",
        "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["closet", "oven", "river", "sky", "shoe"]},
        "answerKey": "A",
    },
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_template_tasks_match_lm_eval_config(name: str) -> None:
    requests, gold = reference_requests(name, ROWS[name])
    ex = HUB_TASKS[name].to_example(ROWS[name], 0)
    assert ex.requests() == requests
    assert ex.label == gold
    assert ex.task == name


@pytest.mark.parametrize("name", sorted({*LM_EVAL_YAML, "mmlu_anatomy"}))
def test_hub_locations_match_lm_eval(name: str) -> None:
    cfg = load_config(config_path(name))
    spec = HUB_TASKS[name]
    assert spec.hub_path == cfg["dataset_path"] or (name.startswith("mmlu_") and spec.hub_path == "cais/mmlu")
    assert spec.hub_name == cfg.get("dataset_name")


def test_every_mmlu_subject_has_an_lm_eval_config_with_our_description() -> None:
    for subject in MMLU_SUBJECTS:
        cfg = load_config(config_path(f"mmlu_{subject}"))
        ex = HUB_TASKS[f"mmlu_{subject}"].to_example(ROWS["mmlu_anatomy"], 0)
        assert ex.context.startswith(cfg["description"]), subject


def test_winogrande_partial_scoring_matches_lm_eval_functions() -> None:
    pre = importlib.import_module("lm_eval.tasks.winogrande.preprocess_winogrande")
    row = {
        "sentence": "Pelmo lent Arvik a coat because _ was cold.",
        "option1": "Pelmo",
        "option2": "Arvik",
        "answer": "2",
    }
    ex = HUB_TASKS["winogrande"].to_example(row, 4)
    contexts = pre.doc_to_choice(row)
    target = pre.doc_to_target(row)
    assert ex.requests() == [(c, " " + target) for c in contexts]
    assert ex.label == pre.doc_to_text(row) == 1
    assert ex.norm_lengths() == [len(c) for c in contexts]


def test_hellaswag_preprocessing_matches_lm_eval() -> None:
    datasets = pytest.importorskip("datasets")
    utils = importlib.import_module("lm_eval.tasks.hellaswag.utils")
    row = {
        "ind": 12,
        "activity_label": "Baking a flob",
        "ctx_a": "A person mixes flour in a bowl. [title] They add water.",
        "ctx_b": "then they",
        "ctx": "unused",
        "endings": [" knead the dough [step] slowly.", "paint the bowl.", "fly away.", "sing  loudly."],
        "source_id": "made-up",
        "split": "val",
        "split_type": "indomain",
        "label": "0",
    }
    ref = utils.process_docs(datasets.Dataset.from_list([row]))[0]
    ex = HUB_TASKS["hellaswag"].to_example(row, 0)
    assert ex.context == ref["query"]
    assert ex.choices == ref["choices"]
    assert ex.label == ref["gold"] == 0
    assert ex.id == "hellaswag-0"  # by position: the dataset's ``ind`` repeats


def test_scienceqa_keeps_text_only_rows_and_uses_hint() -> None:
    spec = HUB_TASKS["scienceqa"]
    rows = [
        {"image": None, "question": "Which is a gas?", "choices": ["rock", "steam"], "answer": 1, "hint": ""},
        {
            "image": {"bytes": b"x"},
            "question": "Look at the map.",
            "choices": ["a", "b"],
            "answer": 0,
            "hint": "",
        },
        {
            "image": None,
            "question": "Pick one.",
            "choices": ["x", "y", "z"],
            "answer": 2,
            "hint": "Zibs glow.",
        },
    ]
    examples = spec.map_rows(rows, where="mem")
    assert [e.context for e in examples] == [
        "Question: Which is a gas?\nAnswer:",
        "Context: Zibs glow.\nQuestion: Pick one.\nAnswer:",
    ]
    assert [e.label for e in examples] == [1, 2]
    assert examples[1].choices == ["x", "y", "z"]


def test_schema_mismatch_names_the_field_and_source() -> None:
    with pytest.raises(
        ValueError, match=r"rows.jsonl: row 0 has no field 'goal' expected by task 'piqa'"
    ) as err:
        HUB_TASKS["piqa"].map_rows(
            [{"question": "q", "sol1": "a", "sol2": "b", "label": 0}], where="rows.jsonl"
        )
    assert "\n" not in str(err.value)


def test_lookup_is_case_and_separator_insensitive() -> None:
    assert get_hub_task("ARC-Easy") is HUB_TASKS["arc_easy"]
    assert get_hub_task("commonsense-qa") is HUB_TASKS["commonsense_qa"]
    assert get_hub_task("nope") is None


def test_taskspec_validate_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match=r"TaskSpec\.hub_path"):
        TaskSpec(
            name="x", hub_path="noslash", hub_name=None, split="test", to_example=lambda r, i: None
        ).validate()
    with pytest.raises(ValueError, match=r"TaskSpec\.split"):
        TaskSpec(name="x", hub_path="a/b", hub_name=None, split="", to_example=lambda r, i: None).validate()


def test_unlabeled_or_inconsistent_rows_are_one_line_errors() -> None:
    wino = {
        "sentence": "Al met _ at noon.",
        "option1": "Bo",
        "option2": "Cy",
        "answer": "",
    }  # hidden test label
    with pytest.raises(
        ValueError, match=r"^w: row 0 of task 'winogrande' cannot be mapped \(answer '' is not '1' or '2'\)$"
    ):
        HUB_TASKS["winogrande"].map_rows([wino], where="w")
    arc = {"id": "x", "question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "E"}
    with pytest.raises(
        ValueError, match=r"^a: row 0 of task 'arc_easy' cannot be mapped \('E' is not in list\)$"
    ):
        HUB_TASKS["arc_easy"].map_rows([arc], where="a")
    hella = {"ind": 1, "activity_label": "x", "ctx_a": "a", "ctx_b": "b", "endings": ["c", "d"], "label": ""}
    with pytest.raises(ValueError, match=r"^h: row 0 of task 'hellaswag' cannot be mapped"):
        HUB_TASKS["hellaswag"].map_rows([hella], where="h")
