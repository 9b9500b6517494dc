"""The suite's BIG-bench views: editable spans that rebuild the exact prompt, length filter, task metrics.

Needs the BIG-bench sdist in the cache (`bash scripts/setup.sh`); skipped without it.
"""

from __future__ import annotations

import pytest

from adamoe.data.bigbench import load_bigbench
from adamoe.data.bigbench_index import tarball_path
from adamoe.data.sources import DataSourceError
from adamoe.rbench.data.bigbench import SPAN_PATTERNS, load_span_task
from adamoe.rbench.data.formats import span_to_mc
from adamoe.rbench.dimensions.tasks import load_tasks, metric_name, uniform_chance


@pytest.fixture(scope="module", autouse=True)
def _tarball() -> None:
    try:
        tarball_path()
    except DataSourceError:
        pytest.skip("BIG-bench sdist not fetched (bash scripts/setup.sh)")


@pytest.mark.parametrize("task", sorted(SPAN_PATTERNS))
def test_every_test_item_has_a_span_and_rebuilds_its_prompt(task: str) -> None:
    items, dropped = load_span_task(f"bigbench:{task}", limit=40)
    originals = {ex.id: ex for ex in load_bigbench(task, "test")}
    assert dropped == 0 and len(items) == min(40, len(originals))
    for it in items:
        ex = originals[it.id]
        assert it.text.strip() and span_to_mc(it).context == ex.context  # the template is untouched
        assert span_to_mc(it).choices == ex.choices and it.label == ex.label


def test_load_tasks_drops_overlong_items_then_keeps_the_first_in_hash_order() -> None:
    tasks = load_tasks(["bigbench:hhh_alignment"], limit=None, max_chars=600)
    kept = tasks["bigbench:hhh_alignment"]
    every = load_bigbench("hhh_alignment", "all")
    assert 0 < len(kept) < len(every)
    assert all(len(ex.context) + max(map(len, ex.choices)) <= 600 for ex in kept)
    assert [ex.id for ex in kept] == [ex.id for ex in every if ex in kept]  # order kept
    assert (
        load_tasks(["bigbench:hhh_alignment"], limit=5, max_chars=600)["bigbench:hhh_alignment"] == kept[:5]
    )
    assert metric_name("bigbench:truthful_qa") == "acc_truthful_qa"
    assert uniform_chance(
        load_tasks(["bigbench:bbq_lite_json"], limit=30)["bigbench:bbq_lite_json"]
    ) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="bigbench:<task>"):
        load_tasks(["truthful_qa"], limit=1)
