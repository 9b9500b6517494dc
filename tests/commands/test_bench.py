"""``adamoe bench``'s ``model_testbed``: validated in one line before anything runs, and handed to the
model section's settings with its dial (``run_all`` is replaced: nothing is run or timed)."""

from __future__ import annotations

import pytest

import adamoe.bench.malloc
import adamoe.bench.run
from adamoe.cli import main


@pytest.fixture
def captured(monkeypatch):
    """The settings ``adamoe bench`` would run, instead of running them."""
    seen = []

    def fake_run_all(settings, *, sections):
        seen.append((settings, sections))
        return {}

    monkeypatch.setattr(adamoe.bench.run, "run_all", fake_run_all)
    monkeypatch.setattr(adamoe.bench.malloc, "tune_malloc", lambda: None)
    monkeypatch.setattr("adamoe.bench.tables.format_table", lambda result: "table")
    return seen


def _bench(tmp_path, *extra: str) -> int:
    return main(["bench", "--sections", "model", "--run-dir", str(tmp_path / "run"), *extra])


def test_model_testbed_reaches_the_model_settings_with_its_dial(tmp_path, captured):
    assert _bench(tmp_path, "--set", "model_testbed=core25-e8-top4") == 0
    ((settings, sections),) = captured
    ms = settings.model
    assert sections == ("model",) and ms.testbed == "core25-e8-top4" and not ms.quick
    assert (ms.target_loads, ms.top_k) == ((4.0, 3.0, 2.0), 5)  # top-4: loads K, 0.75K, 0.5K; k = K + 1
    assert ms.compiled == ("dense", "moe_hf_grouped_mm", "moe_adamoe", "adamoe_load3", "adamoe_load2")


def test_default_testbed_keeps_the_documented_top2_bench(tmp_path, captured):
    assert _bench(tmp_path) == 0
    ms = captured[0][0].model
    assert (ms.testbed, ms.target_loads, ms.top_k) == ("core50-e8-top2", (2.0, 1.5, 1.0), 3)


def test_quick_ignores_the_testbed_and_keeps_the_tiny_models_dial(tmp_path, captured):
    assert _bench(tmp_path, "--quick", "--set", "model_testbed=core25-e8-top4") == 0
    ms = captured[0][0].model
    assert ms.quick and (ms.target_loads, ms.top_k) == ((2.0, 1.5, 1.0), 3)


def test_unknown_testbed_is_one_line_with_the_fix_and_nothing_runs(tmp_path, capsys, captured):
    assert _bench(tmp_path, "--set", "model_testbed=core10-e8-top9") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not captured and not (tmp_path / "run").exists()
    assert "model_testbed: expected one of" in err[0] and "'core25-e8-top4'" in err[0]
    assert "core10-e8-top9" in err[0] and "--set model_testbed=<name>" in err[0]
