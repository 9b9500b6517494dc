"""Recipe sweep: points and arms, seeds and data order, the real trainer's knobs, resume, the CLI.

References: hand-written run lists (which dense runs exist), hand-permuted data, and for the numbers
the fake dimension in `test_sweep_stats.py`.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from adamoe.cli import main
from adamoe.rbench.config import RBenchConfig
from adamoe.rbench.finetune import load_train_pairs
from adamoe.rbench.sweep import (
    DEFAULT_GRID,
    SweepConfig,
    data_order,
    grid_points,
    plan_runs,
    point_label,
    prepare_sweep,
    run_sweep,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_grid_is_the_full_product_in_stable_order() -> None:
    grid = {"dropout": [0.0, 0.1], "freeze_router": [False, True], "aux_coef": [0.0, 1e-3, 1e-2]}
    points = grid_points(grid, mode="grid")
    assert len(points) == 12
    assert points == [dict(zip(grid, v)) for v in itertools.product(*grid.values())]


def test_one_at_a_time_changes_exactly_one_knob_from_the_baseline() -> None:
    grid = {"dropout": [0.0, 0.1], "freeze_router": [False, True], "aux_coef": [0.0, 1e-3, 1e-2]}
    points = grid_points(grid, mode="one_at_a_time")
    base = {"dropout": 0.0, "freeze_router": False, "aux_coef": 0.0}
    assert points[0] == base and len(points) == 1 + 1 + 1 + 2
    for p in points[1:]:
        assert sum(p[k] != base[k] for k in base) == 1
    assert point_label(points[2], base) == "freeze_router=True"
    assert point_label(base, base) == "baseline" and point_label(None, base) == "no fine-tune"


def test_sweep_config_maps_aliases_and_rejects_bad_input() -> None:
    cfg = SweepConfig.from_dict({"model": "tiny-mixtral", "grid": {"aux": [0.0, 0.1], "z_loss": [0.0]}})
    assert list(cfg.grid) == ["aux_coef", "z_loss_coef"] and cfg.seeds == 2 and cfg.dense == "smollm2"
    with pytest.raises(ValueError, match="unknown knob 'temperature'"):
        SweepConfig.from_dict({"grid": {"temperature": [1.0]}})
    with pytest.raises(ValueError, match="dropout"):
        SweepConfig.from_dict({"grid": {"dropout": [0.0, 1.5]}})
    with pytest.raises(ValueError, match="mode"):
        SweepConfig.from_dict({"mode": "random"})
    with pytest.raises(ValueError, match="neither a known name"):
        SweepConfig.from_dict({"model": "/no/such/model"})
    with pytest.raises(ValueError, match=r"sweep\.seeds"):
        SweepConfig.from_dict({"seeds": 0})
    with pytest.raises(ValueError, match=r"sweep\.dense"):
        SweepConfig.from_dict({"model": "tiny-llama", "dense": "tiny-llama"})


def test_the_dense_arm_runs_once_per_distinct_recipe_and_skips_moe_only_knobs() -> None:
    sweep = SweepConfig.from_dict({"model": "tiny-mixtral", "dense": "tiny-llama", "seeds": 2})
    recipes, runs = plan_runs(sweep, seed=5)
    labels = [r.label for r in recipes]
    assert labels == [
        "no fine-tune",
        "baseline",
        "dropout=0.1",
        "expert_dropout=0.2",
        "freeze_router=True",
        "aux_coef=0.001",
        "z_loss_coef=0.001",
    ]
    assert [r.dense_na for r in recipes] == [False, False, False, True, True, True, True]
    assert {r.dense_pid for r in recipes if r.dense_na} == {"p01"}  # compared with the dense baseline
    base = {k: v[0] for k, v in DEFAULT_GRID.items()}
    dense = [(r.pid, r.seed, r.knobs) for r in runs if r.arm == "dense"]
    assert dense == [
        (pid, seed, knobs)
        for seed in (5, 6)
        for pid, knobs in (("p00", None), ("p01", base), ("p02", {**base, "dropout": 0.1}))
    ]
    moe = [(r.pid, r.seed) for r in runs if r.arm == "moe"]
    assert moe == [(f"p{i:02d}", seed) for seed in (5, 6) for i in range(7)]
    assert {r.spec for r in runs if r.arm == "moe"} == {"tiny-mixtral"}


def test_data_order_is_a_permutation_that_differs_between_seeds() -> None:
    items = list(range(40))
    first, again, other = data_order(items, 0), data_order(items, 0), data_order(items, 1)
    assert sorted(first) == items and sorted(other) == items
    assert first == again and first != other


def _suite(**extra: Any) -> RBenchConfig:
    return RBenchConfig.from_dict(
        {
            "limit": 2,
            "progress": False,
            "batch_size": 1,
            "ood": {"id": "generated:product", "sets": [], "shifts": ["upper"]},
            **extra,
        }
    )


def test_real_training_items_by_default_and_generated_under_quick() -> None:
    suite = _suite(finetune={"per_task": 2})
    sweep = SweepConfig.from_dict({"model": "tiny-mixtral", "dense": "tiny-llama", "dims": ["ood"]})
    plan = prepare_sweep(sweep, suite)
    assert plan.train_pairs == load_train_pairs(suite.finetune)  # BIG-bench train splits, 2 per task
    assert sweep.train_data is None and plan.config.models == ["tiny-mixtral", "tiny-llama"]

    quick = SweepConfig.from_dict({"dims": ["ood"], "train_n": 3})
    plan = prepare_sweep(quick, _suite(quick=True))
    assert (quick.model, quick.dense, quick.train_data) == (
        "tiny-mixtral",
        "tiny-llama",
        ["sentiment", "nli"],
    )
    assert len(plan.train_pairs) == 3 + 3


class StubTrainer:
    """Records (model kind, TrainConfig, item order) of each call; trains nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, Any, list[Any]]] = []

    def __call__(self, model: torch.nn.Module, tokenizer: Any, pairs: Any, config: Any) -> Any:
        is_moe = bool(getattr(model.config, "num_local_experts", None))
        self.calls.append((is_moe, config, list(pairs)))
        return type("Result", (), {"final_loss": 1.25, "steps": 3})()


def test_run_sweep_applies_knobs_seeds_share_order_within_and_differ_between_and_resumes(tmp_path) -> None:
    sweep = SweepConfig.from_dict(
        {
            "model": "tiny-mixtral",
            "dense": "tiny-llama",
            "grid": {"dropout": [0.0, 0.1], "aux": [0.0, 0.01]},
            "include_base": False,
            "train": {"max_steps": 3},
            "train_data": ["sentiment"],
            "train_n": 6,
            "dims": ["ood"],
        }
    )
    plan = prepare_sweep(sweep, _suite())
    stub = StubTrainer()
    result = run_sweep(sweep, plan, run_dir=tmp_path, train_fn=stub)

    # per seed: MoE baseline, dense baseline, MoE dropout, dense dropout, MoE aux (no dense: MoE-only)
    knobs = [(moe, c.dropout, c.aux_coef, c.aux_coef_end, c.max_steps) for moe, c, _ in stub.calls]
    per_seed = [
        (True, 0.0, 0.0, 0.0, 3),
        (False, 0.0, 0.0, 0.0, 3),
        (True, 0.1, 0.0, 0.0, 3),
        (False, 0.1, 0.0, 0.0, 3),
        (True, 0.0, 0.01, 0.01, 3),
    ]
    assert knobs == per_seed * 2
    orders = [[p.id for p in pairs] for _, _, pairs in stub.calls]
    assert all(o == orders[0] for o in orders[:5]) and all(o == orders[5] for o in orders[5:])
    assert orders[0] != orders[5] and sorted(orders[0]) == sorted(orders[5])
    train_seeds = [c.seed for _, c, _ in stub.calls]
    assert len(set(train_seeds[:5])) == 1 and train_seeds[0] != train_seeds[5]
    assert [r["id"] for r in result["runs"]][:5] == [
        "moe-p00-s0",
        "dense-p00-s0",
        "moe-p01-s0",
        "dense-p01-s0",
        "moe-p02-s0",
    ]
    assert result["seeds"] == [0, 1] and set(result["summary"]["metrics"]) >= {"ood.id_acc"}

    again = StubTrainer()  # re-run in the same directory: every run is read back, nothing trained
    assert (
        run_sweep(sweep, plan, run_dir=tmp_path, train_fn=again)["runs"] == result["runs"] and not again.calls
    )


def test_sweep_with_the_real_trainer_freezes_the_router(tmp_path) -> None:
    from adamoe.train import train

    sweep = SweepConfig.from_dict(
        {
            "model": "tiny-mixtral",
            "dense": "tiny-llama",
            "seeds": 1,
            "grid": {"freeze_router": [False, True]},
            "include_base": False,
            "train": {"max_steps": 2, "batch_size": 2, "lr": 1e-2},
            "train_data": ["nli"],
            "train_n": 4,
            "dims": ["ood"],
        }
    )
    plan = prepare_sweep(sweep, _suite())
    seen: dict[str, Any] = {}

    def spy(model: torch.nn.Module, tokenizer: Any, pairs: Any, config: Any) -> Any:
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        out = train(model, tokenizer, pairs, config)
        if config.freeze_router:
            seen["changed"] = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
            seen["routers"] = [n for n in before if n.endswith("mlp.gate.weight")]
        return out

    result = run_sweep(sweep, plan, run_dir=tmp_path, train_fn=spy)
    # freeze_router is MoE-only: the dense model runs the baseline only
    assert [r["id"] for r in result["runs"]] == ["moe-p00-s0", "dense-p00-s0", "moe-p01-s0"]
    assert result["runs"][2]["train"]["steps"] == 2
    changed, routers = seen["changed"], seen["routers"]
    assert routers and changed and not changed & set(routers)
    assert any("experts" in n for n in changed)


def test_cli_quick_sweep_writes_the_moe_vs_dense_table(tmp_path) -> None:
    run_dir = tmp_path / "sweep"
    sets = [
        "threads=1",
        "sweep.grid={z_loss: [0.0, 0.001]}",
        "sweep.include_base=false",
        "sweep.train={max_steps: 1, batch_size: 2}",
        "sweep.train_n=2",
        "sweep.dims=[ood]",
        "ood.shifts=[lower]",
        "ood.sets=[]",
    ]
    args = ["rbench", "--sweep", "--quick", "--limit", "2", "--no-progress", "--run-dir", str(run_dir)]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 0
    md = (run_dir / "sweep.md").read_text()
    assert "tiny-mixtral" in md and "tiny-llama" in md and "MoE − dense" in md
    assert "| z_loss_coef=0.001 |" in md and "n/a (dense)" in md
    assert (run_dir / "sweep.json").is_file() and (run_dir / "sweep.html").is_file()


def test_an_arm_of_the_wrong_kind_is_refused_before_training(tmp_path) -> None:
    sweep = SweepConfig.from_dict(
        {
            "model": "tiny-llama",
            "dense": "tiny-mixtral",
            "seeds": 1,
            "grid": {"dropout": [0.0]},
            "dims": ["ood"],
        }
    )
    plan = prepare_sweep(sweep, _suite(quick=True))
    stub = StubTrainer()
    with pytest.raises(ValueError, match=r"sweep\.model: 'tiny-llama' is dense"):
        run_sweep(sweep, plan, run_dir=tmp_path, train_fn=stub)
    assert stub.calls == []
