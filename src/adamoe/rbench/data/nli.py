"""NLI triples (premise, hypothesis, label): ANLI rounds and AdvGLUE MNLI from the hub, or local files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adamoe.rbench.data.rows import check_limit, clean_text, file_rows, finish, hub_rows, required_field
from adamoe.rbench.records import NLI_LABELS, NLIItem

__all__ = ["ADVGLUE_NLI_TASKS", "load_advglue", "load_anli", "load_nli_file"]


_NLI_NAMES = {"entailment": 0, "e": 0, "neutral": 1, "n": 1, "contradiction": 2, "c": 2}


def _nli_label(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected an NLI label, got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        return int(value)
    name = clean_text(value).lower()
    if name in _NLI_NAMES:
        return _NLI_NAMES[name]
    raise ValueError(f"{where}: expected label 0/1/2 or one of {list(NLI_LABELS)}, got {value!r}")


def _nli_rows(
    rows: Sequence[Mapping[str, Any]],
    where: str,
    *,
    source: str,
    premise_field: str = "premise",
    hypothesis_field: str = "hypothesis",
    label_field: str = "label",
    id_field: str = "uid",
) -> list[NLIItem]:
    items = []
    for i, row in enumerate(rows):
        w = f"{where} row {i}"
        label = _nli_label(required_field(row, label_field, w), w)
        if label not in (0, 1, 2):  # -1 marks unlabelled rows in GLUE-style sets
            continue
        items.append(
            NLIItem(
                id=clean_text(row.get(id_field)) or clean_text(row.get("idx")) or f"{source}-{i}",
                premise=clean_text(required_field(row, premise_field, w)),
                hypothesis=clean_text(required_field(row, hypothesis_field, w)),
                label=label,
                source=source,
            )
        )
    return items


def load_anli(
    *, rounds: Sequence[int] = (1, 2, 3), split: str = "test", limit: int | None = None
) -> list[NLIItem]:
    """ANLI rounds from facebook/anli (splits train_r1 .. test_r3), concatenated in round order."""
    check_limit(limit)
    if not rounds or any(r not in (1, 2, 3) for r in rounds):
        raise ValueError(f"rounds: expected a non-empty subset of (1, 2, 3), got {list(rounds)}")
    if split not in ("train", "dev", "test"):
        raise ValueError(f"split: expected 'train', 'dev' or 'test', got {split!r}")
    items: list[NLIItem] = []
    for r in rounds:
        rows = hub_rows("facebook/anli", None, f"{split}_r{r}")
        items += _nli_rows(rows, f"facebook/anli {split}_r{r}", source=f"anli-r{r}")
    return finish(items, "facebook/anli", limit)


ADVGLUE_NLI_TASKS: tuple[str, ...] = ("mnli", "mnli_mismatched")
"""AdvGLUE configs with 3-way NLI labels; adv_rte/adv_qnli are 2-way and are not mapped onto NLIItem."""


def load_advglue(*, task: str = "mnli", limit: int | None = None) -> list[NLIItem]:
    """AdvGLUE's adversarial MNLI sets (AI-Secure/adv_glue, config adv_<task>, split validation)."""
    check_limit(limit)
    if task not in ADVGLUE_NLI_TASKS:
        raise ValueError(f"task: expected one of {list(ADVGLUE_NLI_TASKS)}, got {task!r}")
    rows = hub_rows("AI-Secure/adv_glue", f"adv_{task}", "validation")
    return finish(
        _nli_rows(rows, f"AI-Secure/adv_glue adv_{task}", source=f"advglue-{task}", id_field="idx"),
        "adv_glue",
        limit,
    )


def load_nli_file(
    path: str | Path,
    *,
    premise_field: str = "premise",
    hypothesis_field: str = "hypothesis",
    label_field: str = "label",
    limit: int | None = None,
) -> list[NLIItem]:
    """Local NLI rows; labels as 0/1/2 or entailment/neutral/contradiction."""
    check_limit(limit)
    rows = file_rows(path)
    items = _nli_rows(
        rows,
        str(path),
        source=Path(path).stem,
        premise_field=premise_field,
        hypothesis_field=hypothesis_field,
        label_field=label_field,
        id_field="id",
    )
    return finish(items, str(path), limit)
