"""Training-recipe sweep: grid construction, knob plumbing into TrainConfig, resume, the real trainer."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import torch

from adamoe.cli import main
from adamoe.rbench.config import RBenchConfig
from adamoe.rbench.runner import run_suite
from adamoe.rbench.sweep import (
    SweepConfig,
    grid_points,
    point_label,
    prepare_sweep,
    run_sweep,
    sweep_table,
    write_sweep,
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


def test_sweep_config_maps_aliases_and_rejects_bad_knobs() -> None:
    cfg = SweepConfig.from_dict({"model": "tiny-mixtral", "grid": {"aux": [0.0, 0.1], "z_loss": [0.0]}})
    assert list(cfg.grid) == ["aux_coef", "z_loss_coef"]
    with pytest.raises(ValueError, match="unknown knob 'temperature'"):
        SweepConfig.from_dict({"model": "tiny-mixtral", "grid": {"temperature": [1.0]}})
    with pytest.raises(ValueError, match="dropout"):
        SweepConfig.from_dict({"model": "tiny-mixtral", "grid": {"dropout": [0.0, 1.5]}})
    with pytest.raises(ValueError, match="mode"):
        SweepConfig.from_dict({"model": "tiny-mixtral", "mode": "random"})
    with pytest.raises(ValueError, match="neither a known name"):
        SweepConfig.from_dict({"model": "/no/such/model"})


def _suite() -> RBenchConfig:
    return RBenchConfig.from_dict(
        {
            "models": ["tiny-mixtral"],
            "limit": 2,
            "progress": False,
            "batch_size": 1,
            "ood": {"shifts": ["upper"], "sets": []},
        }
    )


class StubTrainer:
    """Records the TrainConfig of each call and changes the model in a knob-dependent way."""

    def __init__(self) -> None:
        self.configs: list[Any] = []
        self.pairs: list[Any] = []

    def __call__(self, model: torch.nn.Module, tokenizer: Any, pairs: Any, config: Any) -> Any:
        self.configs.append(config)
        self.pairs = list(pairs)
        with torch.no_grad():
            model.lm_head.weight.mul_(1.0 + config.dropout + 10 * config.aux_coef)
        return type("Result", (), {"final_loss": 1.25, "steps": 3})()


def test_run_sweep_trains_each_point_with_its_knobs_and_resumes(tmp_path) -> None:
    sweep = SweepConfig.from_dict(
        {
            "model": "tiny-mixtral",
            "grid": {"dropout": [0.0, 0.1], "aux": [0.0, 0.01]},
            "train": {"trainable": "full", "max_steps": 3},
            "train_n": 4,
            "dims": ["ood"],
        }
    )
    plan = prepare_sweep(sweep, _suite())
    stub = StubTrainer()
    result = run_sweep(sweep, plan, run_dir=tmp_path, train_fn=stub)

    labels = [r["label"] for r in result["rows"]]
    assert labels == ["no fine-tune", "baseline", "dropout=0.1", "aux_coef=0.01"]
    assert [(c.dropout, c.aux_coef, c.max_steps, c.trainable) for c in stub.configs] == [
        (0.0, 0.0, 3, "full"),
        (0.1, 0.0, 3, "full"),
        (0.0, 0.01, 3, "full"),
    ]
    assert len(stub.pairs) == 4 + 4  # train_n sentiment + train_n NLI items
    assert result["rows"][1]["train"] == {"final_loss": 1.25, "steps": 3}
    assert set(result["rows"][0]["routing"]) == {"ood.js", "ood.dload"}

    # the untrained point equals a plain suite run of the same model (an independent path)
    direct = run_suite(plan, cache_root=None)["results"]["tiny-mixtral"]["dims"]["ood"]["metrics"]
    assert result["rows"][0]["metrics"] == {f"ood.{k}": v for k, v in direct.items()}

    paths = write_sweep(tmp_path, result)
    headers, rows = sweep_table(result)
    assert headers[:4] == ["point", "label", "dropout", "aux_coef"] and len(rows) == 4
    assert "| p02 | dropout=0.1 | 0.1 | 0.0 |" in paths["sweep.md"].read_text()
    assert json.loads(paths["sweep.json"].read_text())["rows"] == result["rows"]

    # re-run in the same directory: finished points are read back, nothing is trained again
    again_stub = StubTrainer()
    again = run_sweep(sweep, plan, run_dir=tmp_path, train_fn=again_stub)
    assert again_stub.configs == [] and again["rows"] == result["rows"]


def test_sweep_with_the_real_trainer_freezes_the_router(tmp_path) -> None:
    from adamoe.train import train

    sweep = SweepConfig.from_dict(
        {
            "model": "tiny-mixtral",
            "grid": {"freeze_router": [True]},
            "include_base": False,
            "train": {"trainable": "full", "max_steps": 2, "batch_size": 2, "lr": 1e-2},
            "train_n": 4,
            "dims": ["ood"],
        }
    )
    plan = prepare_sweep(sweep, _suite())
    seen: dict[str, Any] = {}

    def spy(model: torch.nn.Module, tokenizer: Any, pairs: Any, config: Any) -> Any:
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        out = train(model, tokenizer, pairs, config)
        seen["changed"] = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        seen["routers"] = [n for n in before if n.endswith("mlp.gate.weight")]
        return out

    result = run_sweep(sweep, plan, run_dir=tmp_path, train_fn=spy)
    assert len(result["rows"]) == 1 and result["rows"][0]["train"]["steps"] == 2
    changed, routers = seen["changed"], seen["routers"]
    assert routers and changed and not changed & set(routers)
    assert any("experts" in n for n in changed)


def test_cli_sweep_writes_one_table(tmp_path) -> None:
    run_dir = tmp_path / "sweep"
    args = [
        "rbench",
        "--sweep",
        "--limit",
        "2",
        "--no-progress",
        "--run-dir",
        str(run_dir),
        "--set",
        "threads=1",
        "--set",
        "sweep.model=tiny-mixtral",
        "--set",
        "sweep.grid={z_loss: [0.0, 0.001]}",
        "--set",
        "sweep.include_base=false",
        "--set",
        "sweep.train={trainable: full, max_steps: 1, batch_size: 2}",
        "--set",
        "sweep.train_n=2",
        "--set",
        "sweep.dims=[ood]",
        "--set",
        "ood.shifts=[lower]",
        "--set",
        "ood.sets=[]",
    ]
    assert main(args) == 0
    md = (run_dir / "sweep.md").read_text()
    assert "| p00 | baseline | 0.0 |" in md and "| p01 | z_loss_coef=0.001 | 0.001 |" in md
    assert (run_dir / "sweep.json").is_file() and (run_dir / "sweep.html").is_file()
