"""Seed-level statistics against hand computation: the exact sign-flip by a naive loop over all sign
patterns, per-seed accuracies by hand, Holm over exactly the tests in the table."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from adamoe.eval.significance import holm
from adamoe.experiments.seed_stats import seed_accuracies, seed_paired_rows, seed_tables, sign_flip_exact
from adamoe.experiments.tables import TaskRun


def _naive_sign_flip(d: list[float]) -> float:
    observed = abs(sum(d))
    hits = [
        abs(sum(s * x for s, x in zip(signs, d))) >= observed - 1e-12
        for signs in itertools.product((-1, 1), repeat=len(d))
    ]
    return sum(hits) / len(hits)


@pytest.mark.parametrize(
    "d", [[0.1, 0.2, 0.3], [0.1, -0.2, 0.3], [0.05, 0.0, -0.01, 0.02, 0.04, 0.03], [0.0, 0.0], [-0.3]]
)
def test_sign_flip_is_the_naive_enumeration(d):
    assert sign_flip_exact(d) == pytest.approx(_naive_sign_flip(d))


def test_sign_flip_floor_and_bad_input():
    assert sign_flip_exact([0.1, 0.2, 0.3]) == pytest.approx(0.25)  # 3 seeds can never reach 0.05
    assert sign_flip_exact([0.1] * 6) == pytest.approx(2 / 64)
    with pytest.raises(ValueError, match="d: expected a non-empty 1-D list"):
        sign_flip_exact([])


def _run(task: str, credit: list[float]) -> TaskRun:
    return TaskRun(
        task=task,
        ids=tuple(f"{task}{i}" for i in range(len(credit))),
        credit=tuple(credit),
        num_choices=(2,) * len(credit),
    )


def _runs() -> dict:
    """4 seeds: the variant beats the baseline by a seed-dependent amount on task a (4 items), b (2)."""
    base_a = [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 0]]
    ada_a = [[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]]
    base_b, ada_b = [[1, 0], [0, 0], [1, 1], [0, 1]], [[1, 1], [0, 0], [1, 1], [1, 1]]
    return {
        "top2": [{"a": _run("a", a), "b": _run("b", b)} for a, b in zip(base_a, base_b)],
        "ada": [{"a": _run("a", a), "b": _run("b", b)} for a, b in zip(ada_a, ada_b)],
        "ref": [{"a": _run("a", [1, 1, 1, 1]), "b": _run("b", [1, 1])}] * 4,
    }


def test_per_seed_accuracies_and_seed_level_tests_by_hand():
    runs = _runs()
    assert seed_accuracies(runs, "ada", "a") == pytest.approx([0.5, 0.75, 0.0, 1.0])
    assert seed_accuracies(runs, "ada", "average") == pytest.approx(
        [(0.5 + 1) / 2, (0.75 + 0) / 2, (0 + 1) / 2, 1.0]
    )
    rows = {(r["model"], r["task"]): r for r in seed_paired_rows(runs, baseline="top2", exclude=["ref"])}
    assert set(rows) == {("ada", "a"), ("ada", "b"), ("ada", "average")}
    d = [0.5 - 0.25, 0.75 - 0.5, 0.0 - 0.25, 1.0 - 0.5]
    row = rows[("ada", "a")]
    assert row["per_seed"] == pytest.approx(d) and row["diff"] == pytest.approx(np.mean(d))
    sd = np.std(d, ddof=1)
    assert row["sd"] == pytest.approx(sd) and row["t"] == pytest.approx(np.mean(d) / (sd / math.sqrt(4)))
    assert row["p"] == pytest.approx(_naive_sign_flip(d)) and row["min_p"] == pytest.approx(1 / 8)
    # the t interval by hand: t_{3, 0.975} = 3.182446 (tables), half width t * sd / 2
    half = 3.182446305284263 * sd / 2
    assert row["ci"] == pytest.approx([np.mean(d) - half, np.mean(d) + half], rel=1e-9)
    ps = [r["p"] for r in rows.values()]
    assert [r["p_holm"] for r in rows.values()] == pytest.approx(holm(ps))
    assert all(r["family"] == 3 for r in rows.values())


def test_seed_tables_print_every_seed_and_state_the_family():
    runs = _runs()
    rows = seed_paired_rows(runs, baseline="top2", exclude=["ref"])
    per_seed, tests = seed_tables(runs, rows, seeds=[10, 11, 12, 13])
    assert per_seed.headers == ["model", "task", "seed 10", "seed 11", "seed 12", "seed 13"]
    assert ["ada", "a", "50.0", "75.0", "0.0", "100.0"] in [list(r) for r in per_seed.rows]
    assert "95% CI (t, seeds)" in tests.headers
    assert (
        "Holm over the 3 tests of this table" in tests.caption
        and "smallest possible p 0.125" in tests.caption
    )
