"""Suite runner on tiny random models (offline): kill and resume, dense vs MoE routing, data checks.

Reference: an uninterrupted run (a killed-and-resumed run must do exactly its work once and end identical).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from adamoe.eval.evaluator import ModelCall
from adamoe.rbench.config import RBenchConfig
from adamoe.rbench.runner import prepare_suite, run_suite

pytestmark = pytest.mark.usefixtures("one_thread", "offline_wheel")


# ---------------------------------------------------------------- kill and resume


def _plan(models: Sequence[str] = ("tiny-llama", "tiny-mixtral")) -> Any:
    cfg = RBenchConfig.from_dict(
        {
            "models": list(models),
            "limit": 2,
            "max_new_tokens": 3,
            "batch_size": 1,
            "gen_batch_size": 1,
            "chunk_size": 1,
            "progress": False,
            "quick": True,
            "ood": {"shifts": ["upper"]},
            "adversarial": {"attacks": {"char": {"kinds": ["swap", "delete"], "max_edits": 1}}},
        }
    )
    return prepare_suite(cfg)


class Kill(Exception):
    pass


def _key(call: ModelCall) -> tuple[Any, ...]:
    return (call.kind, call.model, call.stage, call.ids)


def test_killed_run_resumes_without_recomputing_and_ends_identical(tmp_path) -> None:
    plan = _plan(("tiny-mixtral", "tiny-llama"))
    full_calls: list[ModelCall] = []
    full = run_suite(plan, cache_root=tmp_path / "full", on_call=full_calls.append)

    before_kill: list[ModelCall] = []
    kill_at = sum(c.model == "tiny-mixtral" for c in full_calls) // 2  # mid-way through the MoE model

    def killer(call: ModelCall) -> None:
        if len(before_kill) == kill_at:
            raise Kill
        before_kill.append(call)

    with pytest.raises(Kill):
        run_suite(plan, cache_root=tmp_path / "resumed", on_call=killer)
    after: list[ModelCall] = []
    resumed = run_suite(plan, cache_root=tmp_path / "resumed", on_call=after.append)

    # every unit of work ran exactly once over the two runs, and the rerun did only what was left
    assert sorted(map(_key, before_kill + after)) == sorted(map(_key, full_calls))
    assert 0 < len(after) < len(full_calls)
    for m in plan.config.models:
        for d in plan.config.dims:
            got, want = resumed["results"][m]["dims"][d], full["results"][m]["dims"][d]
            assert got["metrics"] == want["metrics"]
            assert got["routing"] == want["routing"]


def test_dense_has_no_routing_and_moe_reports_drift_per_dimension(tmp_path) -> None:
    result = run_suite(_plan(), cache_root=None)
    dense, moe = result["results"]["tiny-llama"], result["results"]["tiny-mixtral"]
    assert not dense["is_moe"] and all(d["routing"] is None for d in dense["dims"].values())
    expected = {"safety": {"harmful-matched": "benign"}, "ood": {"upper": "id", "data:cb": "id:rte"}}
    attacked = moe["dims"]["adversarial"]["routing"]["shift"]
    expected["adversarial"] = {name: f"clean:{name}" for name in attacked}  # each set vs its own clean items
    for dim, pairs in expected.items():
        routing = moe["dims"][dim]["routing"]
        assert {k: v["reference"] for k, v in routing["shift"].items()} == pairs
        for shift in routing["shift"].values():
            ref = routing["stages"][shift["reference"]]
            assert 0.0 <= shift["js_mean"] <= shift["js_max"] <= 1.0  # bits: JS is bounded by 1
            assert len(shift["js_per_layer"]) == 2 and 0 < shift["p"] <= shift["p_holm"] <= 1
            assert shift["delta_load"] == pytest.approx(shift["load"] - ref["load"])
    assert moe["dims"]["ood"]["routing"]["stages"]["id"]["load"] == pytest.approx(2.0)  # top-2, no nulls


def test_empty_data_fails_before_any_model_runs(tmp_path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    cfg = RBenchConfig.from_dict(
        {"models": ["tiny-llama"], "dims": ["safety"], "safety": {"benign": str(empty)}}
    )
    with pytest.raises(ValueError, match=r"safety: .*empty"):
        prepare_suite(cfg)


def test_models_with_identical_outputs_are_reported_as_identical_not_as_deltas() -> None:
    from adamoe.hf.models import resolve_model
    from adamoe.rbench.report import markdown_summary

    def same_model(spec: str, *, seed: int) -> Any:
        return resolve_model("tiny-llama", seed=0)  # both specs load the very same weights

    cfg = RBenchConfig.from_dict(
        {
            "models": ["tiny-llama", "tiny-mixtral"],
            "dims": ["hallucination", "ood"],
            "limit": 2,
            "max_new_tokens": 2,
            "progress": False,
            "quick": True,
            "ood": {"shifts": ["upper"]},
        }
    )
    result = run_suite(prepare_suite(cfg), cache_root=None, load_model=same_model)
    for dim in ("hallucination", "ood"):
        (comparison,) = result["comparisons"][dim].values()
        assert comparison["identical"] is True and comparison["metrics"] == {}
    md = markdown_summary(result)
    assert "their outputs are identical, so no difference is reported" in md
    assert "identical outputs" in md and "p=" not in md


def test_a_moe_whose_build_data_is_missing_fails_before_any_data_is_loaded(monkeypatch, tmp_path) -> None:
    from adamoe.data import DataSourceError
    from adamoe.experiments import moe_model
    from adamoe.rbench import runner

    def missing() -> list[str]:
        raise DataSourceError("calibration passages: not found; run `python -m adamoe.vendor_data fetch`")

    built: list[object] = []
    monkeypatch.setattr("adamoe.paths.models_dir", lambda: tmp_path)  # no cached moefied build here
    monkeypatch.setattr(moe_model, "calibration_texts", missing)
    monkeypatch.setattr(runner, "build_dimensions", lambda *a, **k: built.append(a) or {})
    cfg = RBenchConfig.from_dict(
        {"models": ["tiny-llama", "smollm2-moefy"], "quick": True, "progress": False}
    )
    with pytest.raises(
        ValueError, match=r"model 'smollm2-moefy': its one-time build .*vendor_data fetch"
    ) as err:
        prepare_suite(cfg)
    assert "\n" not in str(err.value) and built == []
    cfg.models = ["tiny-llama"]  # the same suite without that model goes on to load its data
    prepare_suite(cfg)
    assert len(built) == 1


@pytest.mark.parametrize("quick", [True, False])
def test_the_default_loaders_get_the_configs_calibration_rows(monkeypatch, quick) -> None:
    from adamoe.rbench import models, runner
    from adamoe.rbench.config import QUICK_MOEFY_ROWS

    seen: list[tuple[str, str, Any]] = []

    def check(spec: str, *, calib_rows: Any) -> None:
        seen.append(("check", spec, calib_rows))

    def load(spec: str, *, seed: int, calib_rows: Any) -> Any:
        seen.append(("load", spec, calib_rows))
        raise ValueError("stop after the load")

    monkeypatch.setattr(models, "check_model_data", check)
    monkeypatch.setattr(models, "load_model", load)
    monkeypatch.setattr(runner, "build_dimensions", lambda *a, **k: {})
    cfg = RBenchConfig.from_dict(
        {"models": ["smollm2-moefy"], "quick": quick, "progress": False, "finetune": {"enabled": False}}
    )
    plan = prepare_suite(cfg)
    with pytest.raises(ValueError, match="stop after the load"):
        run_suite(plan, cache_root=None)
    rows = QUICK_MOEFY_ROWS if quick else None
    assert seen == [("check", "smollm2-moefy", rows), ("load", "smollm2-moefy", rows)]


# ---------------------------------------------------------------- wall and CPU seconds


def test_each_dimension_keeps_its_wall_and_cpu_seconds_and_logs_both() -> None:
    """A dimension that waits (sleeps) uses wall time but no CPU; one that computes uses CPU: the record
    and the log line tell a run that waited for the CPUs from one that worked."""
    import re
    import time

    from adamoe.rbench.dimensions.base import DimensionResult
    from adamoe.rbench.runner import SuitePlan, evaluate_model

    class Waits:
        name = "waits"

        def run(self, ev: Any, data: Any, *, seed: int) -> DimensionResult:
            time.sleep(0.3)
            return DimensionResult(dimension=self.name, metrics={})

    class Works(Waits):
        name = "works"

        def run(self, ev: Any, data: Any, *, seed: int) -> DimensionResult:
            end = time.process_time() + 0.3
            while time.process_time() < end:
                pass
            return DimensionResult(dimension=self.name, metrics={})

    class Ev:
        name = "m"

        def signature(self) -> str:
            return ""

    plan = SuitePlan(
        config=RBenchConfig.from_dict({"quick": True}),
        dimensions={"waits": Waits(), "works": Works()},  # type: ignore[dict-item]
        data={"waits": None, "works": None},
    )
    lines: list[str] = []
    out = evaluate_model(Ev(), plan, log=lines.append)  # type: ignore[arg-type]
    waits, works = out["waits"], out["works"]
    assert waits.seconds >= 0.3 and waits.cpu_seconds < 0.1
    assert works.cpu_seconds >= 0.3 and works.to_dict()["cpu_seconds"] == works.cpu_seconds
    assert re.fullmatch(r"  m · waits: 0\.\ds \(CPU 0\.\ds, 1 torch threads\)", lines[0]), lines[0]
