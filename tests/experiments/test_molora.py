"""Experiment 1 (Mo-LoRA) on a tiny random Llama and the miniature offline wheel: config, seeds, FLOPs,
report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adamoe.experiments.harness import seed_stream
from adamoe.experiments.molora import MoLoRAExperimentConfig, molora_flops, parse_variant, run_molora
from adamoe.hf.models import ModelSpec
from adamoe.hf.molora import inject_molora, molora_modules
from adamoe.runs import load_config
from tests.experiments.fixtures import one_thread, paper_tasks  # noqa: F401  (fixtures)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reproduce_molora.yaml"


pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny(tasks: list[str], **extra) -> MoLoRAExperimentConfig:
    settings = {
        "model": "tiny-llama",
        "tasks": tasks,
        "train_per_task": 8,
        "test_per_task": 12,
        "epochs": 1,
        "seeds": 2,
        "variants": ["top2", "m5k4"],
        "n_boot": 200,
        **extra,
    }
    return MoLoRAExperimentConfig.from_mapping(settings, where="")


def test_variant_names():
    assert parse_variant("top1") == (0, 1) and parse_variant("m7k4") == (7, 4)
    with pytest.raises(ValueError, match="variants: expected names like top2 or m7k4"):
        parse_variant("adamoe")


def test_defaults_are_the_paper_grid_and_the_example_yaml_spells_them_out():
    cfg = MoLoRAExperimentConfig().validate()
    assert cfg.variants == ["top1", "top2", "m5k4", "m7k4", "m9k4", "m5k2"] and cfg.seeds >= 3
    assert (cfg.num_experts, cfg.rank, cfg.baseline) == (4, 8, "top2")
    assert cfg.tasks == ["rte", "commonsense_qa", "openbookqa", "sst2", "sciq"] and cfg.targets == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]
    assert MoLoRAExperimentConfig.from_mapping(load_config(EXAMPLE), where="") == cfg


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"variants": ["top2", "m5k10"]}, "variants: m5k10 picks k=10 of 4 experts"),
        ({"baseline": "top3"}, "baseline: expected one of the variants"),
        ({"variants": ["top2", "base"]}, "variants: expected names like"),
        ({"seeds": 0}, "seeds: expected >= 1"),
        ({"tasks": []}, "tasks: expected at least one task"),
    ],
)
def test_bad_settings_are_one_line_errors(mapping, message):
    with pytest.raises(ValueError, match=message):
        MoLoRAExperimentConfig.from_mapping(mapping, where="")


def test_resolved_config_prints_annealing_where_nulls_exist():
    recipes = MoLoRAExperimentConfig().validate().resolved()["recipes"]
    for name in ("m5k4", "m7k4", "m9k4", "m5k2"):
        assert recipes[name]["aux_loss"] == "null_aware" and recipes[name]["aux_schedule"] == "step"
        assert recipes[name]["aux_coef"] > recipes[name]["aux_coef_end"]
    for name in ("top1", "top2"):
        assert recipes[name]["aux_schedule"] == "constant"
    off = MoLoRAExperimentConfig.from_mapping({"anneal": False}, where="").resolved()["recipes"]
    assert off["m5k4"]["aux_schedule"] == "constant"


def test_seed_streams_are_independent_per_purpose_and_seed():
    assert seed_stream(0, "init") != seed_stream(0, "data")
    assert seed_stream(0, "init") != seed_stream(1, "init") and seed_stream(3, "data") == seed_stream(
        3, "data"
    )
    routers = []
    for s in (0, 1, 0):
        model = inject_molora(
            ModelSpec.parse("tiny-llama").load()[0], num_null=5, top_k=4, seed=seed_stream(s, "init")
        )
        routers.append(next(iter(molora_modules(model).values())).router.weight.detach().clone())
    assert not torch.equal(routers[0], routers[1]) and torch.equal(routers[0], routers[2])


def test_whole_model_flops_add_routers_and_lora_at_the_measured_load():
    from adamoe.eval.flops import DecoderShape, forward_flops

    model = inject_molora(ModelSpec.parse("tiny-llama").load()[0], num_null=5, top_k=4, rank=8)
    mods = molora_modules(model)
    routing = {"load": 1.0, "layers": {n: {"load": 1.0} for n in mods}}
    out = molora_flops(model, routing, baseline_k=2)
    dense = forward_flops(DecoderShape.from_config(model.config), load=0.0)["total"]
    ours = dense + sum(
        2 * m.in_features * 9 + 1.0 * 2 * 8 * (m.in_features + m.out_features) for m in mods.values()
    )
    base = dense + sum(
        2 * m.in_features * 4 + 2.0 * 2 * 8 * (m.in_features + m.out_features) for m in mods.values()
    )
    assert out["model_flops_pct"] == pytest.approx(100 * ours / base)
    assert out["expert_flops_pct"] == pytest.approx(50.0)


def test_run_writes_the_table_and_same_seed_gives_identical_results(paper_tasks, tmp_path):  # noqa: F811
    cfg = _tiny(paper_tasks)
    out = run_molora(cfg, seed=0, run_dir=tmp_path / "a", log=lambda *_: None)
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    models = {r["model"] for r in metrics["table"]}
    assert models == {"base", "top2", "m5k4"} and {r["model"] for r in out["paired"]} == {"m5k4"}
    rows = {(r["model"], r["task"]): r for r in out["rows"]}
    assert rows[("top2", "average")]["load"] == pytest.approx(2.0)
    assert 0 < rows[("m5k4", "average")]["load"] < 4
    assert rows[("base", "average")]["load"] is None
    assert metrics["config"]["recipes"]["m5k4"]["aux_schedule"] == "step"
    for png in ("accuracy.png", "acc_vs_load.png", "load_per_layer.png"):
        assert (tmp_path / "a" / png).stat().st_size > 0
    runs = tmp_path / "a" / "runs"
    s0, s1 = (json.loads((runs / f"m5k4-s{s}.json").read_text())["tasks"] for s in (0, 1))
    assert any(s0[t]["layers"] != s1[t]["layers"] for t in s0)  # another seed: another init and order
    again = run_molora(
        _tiny(paper_tasks, variants=["top2", "m5k4"], seeds=1),
        seed=0,
        run_dir=tmp_path / "b",
        log=lambda *_: None,
    )
    assert json.loads((tmp_path / "b" / "runs" / "m5k4-s0.json").read_text())["tasks"] == s0
    assert again["rows"][0]["model"] == "base"


def test_a_run_dir_resumes_under_the_same_settings_only(paper_tasks, tmp_path):  # noqa: F811
    lines: list[str] = []
    cfg = _tiny(paper_tasks, variants=["top2"], seeds=1, reference=False)
    run_molora(cfg, seed=0, run_dir=tmp_path, log=lambda *_: None)
    run_molora(cfg, seed=0, run_dir=tmp_path, log=lines.append)
    assert "0 runs to do" in lines[0]
    more = _tiny(paper_tasks, variants=["top2", "m5k4"], seeds=1, reference=False)  # adds runs: fine
    run_molora(more, seed=0, run_dir=tmp_path, log=lambda *_: None)
    other = _tiny(paper_tasks, variants=["top2"], seeds=1, reference=False, test_per_task=6)
    with pytest.raises(ValueError, match=r"holds runs made with other settings \(test_per_task\)"):
        run_molora(other, seed=0, run_dir=tmp_path, log=lambda *_: None)
