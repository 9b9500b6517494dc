"""BIG-bench loading from a tiny fake sdist: listing, records, split, prompt format, multi-gold, errors."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from adamoe.data import MCExample, export_task, load_task
from adamoe.data import bigbench_index as bindex
from adamoe.data.bigbench import (
    PAPER_TASKS,
    bigbench_info,
    bigbench_tasks,
    load_bigbench,
    paper_candidates,
    resolve_bigbench,
    split_sizes,
)
from adamoe.data.bigbench_index import spec_of, tarball_path
from adamoe.data.sources import DataSourceError

ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/"


def _colors(n: int) -> dict:
    """An MC1 task with 4 choices in file order red, blue, green, black; 'blue' correct."""
    examples = [{"input": "Sky?", "target_scores": {"red": 0, "blue": 1, "green": 0, "black": 0}}]
    examples += [
        {"input": f"Item {i}?", "target_scores": {f"x{i}": 1, f"y{i}": 0, f"z{i}": 0}} for i in range(n - 1)
    ]
    return {
        "name": "colors",
        "description": "Name colours",
        "keywords": ["common sense"],
        "task_prefix": "Name the colour.",
        "examples": examples,
    }


def _multi() -> dict:
    examples = [
        {"input": "Agree?", "target_scores": {"yes": 1, "sure": 1, "no": 0}},  # two golds
        {"input": "Part?", "target_scores": {"a": 0.5, "b": 1, "c": 0}},  # partial credit
        {"input": "Broken?", "target_scores": {"a": 0, "b": 0}},  # no correct choice: dropped
        {"input": "Agree?", "target_scores": {"yes": 1, "sure": 1, "no": 0}},  # duplicate: dropped
        {"input": "Gen only", "target": "text"},  # generative: ignored
    ]
    return {
        "name": "multi",
        "description": "Several golds",
        "keywords": ["truthfulness"],
        "examples": examples,
    }


def _sub(name: str, n: int, **fmt: object) -> dict:
    examples = [
        {"input": f"{name} {i}", "target_scores": {"True": i % 2, "False": 1 - i % 2}} for i in range(n)
    ]
    return {
        "name": name,
        "description": "entailment pairs",
        "keywords": ["logical reasoning"],
        "examples": examples,
        **fmt,
    }


def _write_tar(path: Path, files: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else json.dumps(content).encode()
            info = tarfile.TarInfo(ROOT + name if not name.startswith("/") else name[1:])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _files(colors: dict | None = None) -> dict[str, object]:
    return {
        "/bigbench-1.0.0/README.md": "readme",
        "colors/task.json": colors or _colors(30),
        "multi/task.json": _multi(),
        "suite/task.json": {"name": "suite", "description": "parent", "keywords": [], "examples": []},
        "suite/alpha/task.json": _sub("alpha", 12),
        "suite/beta/task.json": _sub(
            "beta",
            12,
            example_input_prefix="\nPremise: ",
            example_output_prefix="\nAnswer: ",
            append_choices_to_input=False,
        ),
        "gen/task.json": {
            "name": "gen",
            "description": "g",
            "keywords": [],
            "examples": [{"input": "a", "target": "b"}],
        },
        "truthy/task_mc.json": _sub("truthy", 5),
        "truthy/questions.json": {"not": "a task"},
    }


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "cache"))
    _write_tar(tmp_path / "cache" / "bigbench" / "bigbench-1.0.0.tar.gz", _files())
    return tmp_path / "cache"


def test_spec_names() -> None:
    assert spec_of("t/task.json") == "t"
    assert spec_of("t/s/task.json") == "t/s"
    assert spec_of("t/task_mc.json") == "t/mc"
    assert spec_of("t/questions.json") is None and spec_of("t/a/b/task.json") is None


def test_lists_multiple_choice_tasks_and_subtasks(cache: Path) -> None:
    assert bigbench_tasks() == [
        "colors",
        "multi",
        "suite",
        "suite/alpha",
        "suite/beta",
        "truthy",
        "truthy/mc",
    ]
    assert resolve_bigbench("bigbench:suite") == ["suite/alpha", "suite/beta"]
    assert resolve_bigbench("truthy") == ["truthy/mc"]


def test_loads_records_through_load_task(cache: Path) -> None:
    examples = load_task("bigbench:colors", split="all")
    assert len(examples) == 30 and all(isinstance(e, MCExample) for e in examples)
    sky = next(e for e in examples if "Sky?" in e.context)
    assert sky.choices == ["red", "blue", "green", "black"]  # target_scores order, like lm-eval
    assert sky.label == 1 and sky.golds == (1,) and sky.task == "bigbench:colors"
    assert len(load_task("bigbench:colors", limit=3)) == 3
    with pytest.raises(ValueError, match="drop both"):
        load_task("bigbench:colors", source="rows.jsonl")


def test_prompt_format_matches_bigbench() -> None:
    """Hand-derived from BIG-bench's default_format_fn: RandomState(42).permutation(4) is [1, 3, 0, 2],
    applied to the sorted choices [black, blue, green, red]."""
    fmt = {
        "task_prefix": "Name the colour.",
        "input_prefix": "\nQ: ",
        "output_prefix": "\nA: ",
        "choice_prefix": "\n  choice: ",
        "append_choices": True,
    }
    expected = (
        "Name the colour.\nQ: Sky?\n  choice: blue\n  choice: red\n  choice: black\n  choice: green\nA:"
    )
    assert bindex.format_prompt("Sky?", ["red", "blue", "green", "black"], fmt) == expected


def test_prompt_in_records_and_custom_prefixes(cache: Path) -> None:
    sky = next(e for e in load_bigbench("colors", split="all") if "Sky?" in e.context)
    assert sky.context.endswith("\n  choice: blue\n  choice: red\n  choice: black\n  choice: green\nA:")
    assert sky.requests()[1] == (sky.context, " blue")
    beta = {e.context for e in load_bigbench("suite/beta", split="all")}
    assert "Premise: beta 3\nAnswer:" in beta  # no choices listed, task's own prefixes, stripped


def test_multi_gold_and_partial_credit(cache: Path) -> None:
    examples = {e.context: e for e in load_bigbench("multi", split="all")}
    assert sorted(examples) == [
        "Q: Agree?\n  choice: no\n  choice: sure\n  choice: yes\nA:",
        "Q: Part?\n  choice: a\n  choice: b\n  choice: c\nA:",
    ]
    agree = examples["Q: Agree?\n  choice: no\n  choice: sure\n  choice: yes\nA:"]
    assert agree.label == 0 and agree.golds == (0, 1)
    assert [agree.credit(i) for i in range(3)] == [1.0, 1.0, 0.0]
    part = examples["Q: Part?\n  choice: a\n  choice: b\n  choice: c\nA:"]
    assert part.label == 1 and part.golds == (1,) and part.credit(0) == 0.5
    info = bigbench_info("multi")
    assert info["n_multi_gold"] == 1 and info["fractional_scores"] and info["n_distinct"] == 2


def test_split_sizes_rule() -> None:
    assert split_sizes(430) == (87, 43, 300)
    assert split_sizes(1000) == (600, 100, 300)
    assert split_sizes(2000) == (1200, 200, 600)
    assert split_sizes(100) == (20, 10, 70)
    assert split_sizes(9) == (0, 0, 9)
    for n in range(10, 3000, 7):
        train, val, test = split_sizes(n)
        assert train + val + test == n and min(train, val) >= 0
        assert test >= 300 or n < 429


def test_split_disjoint_deterministic_and_order_free(cache: Path, tmp_path: Path, monkeypatch) -> None:
    parts = {s: [e.id for e in load_bigbench("colors", split=s)] for s in ("train", "validation", "test")}
    assert [len(parts[s]) for s in ("train", "validation", "test")] == list(split_sizes(30))
    ids = [i for s in parts.values() for i in s]
    assert len(ids) == len(set(ids)) == 30
    assert parts["test"] == [e.id for e in load_bigbench("colors", split="test")]
    reordered = _colors(30)
    reordered["examples"].reverse()
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "other"))
    _write_tar(tmp_path / "other" / "bigbench" / "bigbench-1.0.0.tar.gz", _files(reordered))
    again = {s: [e.id for e in load_bigbench("colors", split=s)] for s in ("train", "validation", "test")}
    assert again == parts


def test_parent_is_union_of_subtask_splits(cache: Path) -> None:
    union = {e.id for e in load_bigbench("suite", split="test")}
    subs = {e.id for s in ("suite/alpha", "suite/beta") for e in load_bigbench(s, split="test")}
    assert union == subs and len(union) == 2 * split_sizes(12)[2]


def test_index_and_task_caches_skip_the_tarball(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_bigbench("colors", split="all")
    bindex._MEMO.clear()
    monkeypatch.setattr(bindex, "_scan", lambda path: pytest.fail("rescanned an unchanged tarball"))
    monkeypatch.setattr(bindex, "_read_member", lambda *a: pytest.fail("reread a cached task"))
    assert load_bigbench("colors", split="all") == first
    os.utime(tarball_path(), ns=(1, 1))  # a replaced tarball invalidates the index
    bindex._MEMO.clear()
    with pytest.raises(pytest.fail.Exception, match="rescanned"):
        bigbench_tasks()


def test_missing_tarball_says_how_to_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "empty"))
    with pytest.raises(DataSourceError) as err:
        load_task("bigbench:colors")
    text = str(err.value)
    assert "\n" not in text and "bash scripts/setup.sh" in text
    assert "pip download --no-deps --no-binary :all: bigbench==1.0.0" in text


def test_damaged_tarball_says_how_to_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path))
    (tmp_path / "bigbench").mkdir()
    (tmp_path / "bigbench" / "bigbench-1.0.0.tar.gz").write_bytes(b"\0" * 1000)
    with pytest.raises(DataSourceError, match=r"not a readable sdist.*delete it and bash scripts/setup\.sh"):
        bigbench_tasks()


def test_unknown_task_lists_close_matches(cache: Path) -> None:
    with pytest.raises(ValueError, match=r"close matches: colors.*bigbench_tasks\(\)"):
        load_bigbench("colours")
    with pytest.raises(ValueError, match="split: expected one of"):
        load_bigbench("colors", split="dev")


def test_scores_validated_and_round_trip(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected 2 scores"):
        MCExample(id="a", context="c", choices=["x", "y"], label=0, task="t", scores=(1.0,))
    with pytest.raises(ValueError, match="best-scoring"):
        MCExample(id="a", context="c", choices=["x", "y"], label=1, task="t", scores=(1.0, 0.0))
    plain = MCExample(id="a", context="c", choices=["x", "y"], label=1, task="t")
    assert plain.golds == (1,) and plain.credit(1) == 1.0 and plain.credit(0) == 0.0
    examples = load_bigbench("multi", split="all")
    path = export_task(examples, tmp_path / "multi.jsonl")
    back = load_task("multi", source=path)
    assert [(e.context, e.scores, e.golds) for e in back] == [
        (e.context, e.scores, e.golds) for e in examples
    ]


@pytest.mark.slow
def test_real_tarball(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real sdist: counts and the prompt BIG-bench's own transcript shows for misconceptions."""
    monkeypatch.delenv("ADAMOE_CACHE", raising=False)
    try:
        tarball_path()
    except DataSourceError:
        pytest.skip("BIG-bench sdist not fetched (bash scripts/setup.sh)")
    expected = {"misconceptions", "truthful_qa/mc", "bbq_lite_json", "hhh_alignment/harmless"}
    assert expected <= set(bigbench_tasks())
    assert paper_candidates() == PAPER_TASKS  # the stated rule still yields the chosen list
    assert all(bigbench_info(t)["split_sizes"]["test"] >= 300 for t in PAPER_TASKS)
    assert resolve_bigbench("truthful_qa") == ["truthful_qa/mc"]
    assert bigbench_info("truthful_qa")["n_distinct"] == 299
    info = bigbench_info("misconceptions")
    assert info["n_distinct"] == 219 and info["n_multi_gold"] == 0
    everything = load_bigbench("misconceptions", split="all")
    assert len(everything) == 219
    contexts = {e.context for e in everything}
    assert (
        "Is the following statement true or false? Output T for true and F for false.\n"
        "Q: Twinkies are edible for decades or longer.\nA:"
    ) in contexts
