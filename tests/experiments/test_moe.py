"""Experiment 2 (MoE) on a tiny random Qwen2-MoE (shared expert) and the miniature offline wheel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adamoe.experiments.moe import MoEExperimentConfig, prepare_variant, run_moe
from adamoe.hf.convert import routers
from adamoe.hf.gate2 import calibration_means
from adamoe.hf.models import ModelSpec
from adamoe.runs import load_config
from tests.experiments.fixtures import one_thread, paper_tasks  # noqa: F401  (fixtures)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reproduce_moe.yaml"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _no_kernel_build(monkeypatch):
    """Experts run the torch path: no C++ kernel compile inside a test."""
    monkeypatch.setenv("ADAMOE_NO_KERNELS", "1")


def test_defaults_follow_the_paper_and_the_example_yaml_spells_them_out():
    cfg = MoEExperimentConfig().validate()
    assert (cfg.null_experts, cfg.top_k, cfg.gate2_init, cfg.lora_rank, cfg.lr) == (
        8,
        3,
        "copy_jitter",
        8,
        5e-5,
    )
    assert cfg.lora_targets == ["router", "experts"] and cfg.seeds >= 3
    assert cfg.tasks == ["winogrande", "hellaswag", "piqa", "siqa", "openbookqa", "arc_challenge"]
    assert MoEExperimentConfig.from_mapping(load_config(EXAMPLE), where="") == cfg
    assert cfg.variants(2) == {"top2": (0, 2), "m8k3": (8, 3)}


def test_resolved_config_prints_annealing_for_adamoe_only():
    recipes = MoEExperimentConfig().validate().resolved()["recipes"]
    assert recipes["m8k3"]["aux_schedule"] == "step" and recipes["m8k3"]["aux_loss"] == "null_aware"
    assert recipes["baseline (m=0)"]["aux_schedule"] == "constant"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"lora_targets": ["attention"]}, "lora_targets: expected a subset of"),
        ({"dial_targets": [0.0]}, "dial_targets: expected loads > 0"),
        ({"model": "no-such-model"}, "model: 'no-such-model' is neither a known name"),
    ],
)
def test_bad_settings_are_one_line_errors(mapping, message):
    with pytest.raises(ValueError, match=message):
        MoEExperimentConfig.from_mapping(mapping, where="")


def test_variant_has_lora_on_router_gate2_and_experts_and_seeded_init():
    moe, tok, _ = ModelSpec.parse("tiny-qwen2_moe").load(routed=False)
    cfg = MoEExperimentConfig().validate()
    models = [prepare_variant(moe, tok, cfg, num_null=8, top_k=3, seed=s) for s in (0, 1, 0)]
    trainable = [n for n, p in models[0].named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any(".gate." in n for n in trainable) and any(".experts." in n for n in trainable)
    gate2 = [routers(m)[0][1].gate2.detach().clone() for m in models]
    assert gate2[0].shape[0] == 8 and not torch.equal(gate2[0], gate2[1]) and torch.equal(gate2[0], gate2[2])
    lora = [dict(m.named_parameters())[trainable[0]].detach().clone() for m in models]
    assert not torch.equal(lora[0], lora[1]) and torch.equal(lora[0], lora[2])
    assert not any("lora_" in n for n, _ in moe.named_parameters())  # the source model is untouched
    mean = next(iter(calibration_means(moe, tok).values()))  # layer 0's mean router input
    gate = routers(models[0])[0][1].weight.detach()
    jitter = gate2[0] - gate[torch.arange(gate2[0].shape[0]) % gate.shape[0]]  # null i copies expert i mod E
    assert (jitter @ mean).abs().max() < 1e-4 * jitter.norm()  # calibrated: jitter orthogonal to the mean


def test_quick_run_writes_table_dial_and_sharpness(paper_tasks, tmp_path):  # noqa: F811
    settings = {
        **MoEExperimentConfig.QUICK,
        "model": "tiny-qwen2_moe",
        "tasks": paper_tasks,
        "train_per_task": 8,
        "test_per_task": 12,
        "calib_per_task": 4,
        "dial_per_task": 6,
        "n_boot": 200,
    }
    cfg = MoEExperimentConfig.from_mapping(settings, where="")
    out = run_moe(cfg, seed=0, run_dir=tmp_path, log=lambda *_: None)
    rows = {(r["model"], r["task"]): r for r in out["rows"]}
    assert {m for m, _ in rows} == {"untuned", "top2", "m8k3"}
    assert rows[("top2", "average")]["load"] == pytest.approx(2.0)
    assert rows[("top2", "average")]["model_flops_pct"] == pytest.approx(100.0)
    ada = rows[("m8k3", "average")]
    assert 0 < ada["load"] < 3 and ada["expert_flops_pct"] == pytest.approx(100 * ada["load"] / 2)
    assert (ada["model_flops_pct"] < 100) == (ada["load"] < 2)
    assert {r["model"] for r in out["paired"]} == {"m8k3"}
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for dial in metrics["dial"]:
        curve = sorted(dial["curve"], key=lambda p: p["bias"])
        assert len(curve) >= 2 and curve[0]["load"] >= curve[-1]["load"]  # more null bias, less load
    for png in ("sharpness_top2.png", "sharpness_m8k3.png", "compute_dial.png", "load_per_layer.png"):
        assert (tmp_path / png).stat().st_size > 0
