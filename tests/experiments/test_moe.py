"""Experiment 2 (MoE) on a tiny random Qwen2-MoE (shared expert) and the miniature offline wheel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adamoe.experiments.arms import parse_arm
from adamoe.experiments.harness import RunStore
from adamoe.experiments.moe import MoEExperimentConfig, arm_weights, run_moe
from adamoe.experiments.moe_runs import prepare_variant
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
    assert (cfg.gate2_init, cfg.lora_rank, cfg.lr, cfg.baseline) == ("copy_jitter", 8, 5e-5, "top4")
    assert cfg.arms == ["top2", "top4", "m8k5", "m8k5-ste"] and cfg.reference_arm() == parse_arm("m8k5")
    assert (
        cfg.testbed == "core25-e8-top4"
    )  # m = E nulls, k raised by one over the testbed's top-4, as the paper
    assert cfg.lora_targets == ["router", "experts"] and cfg.seeds >= 3 and cfg.random_null
    assert cfg.tasks == ["winogrande", "hellaswag", "piqa", "siqa", "openbookqa", "arc_challenge"]
    assert MoEExperimentConfig.from_mapping(load_config(EXAMPLE), where="") == cfg


def test_resolved_config_prints_annealing_for_adamoe_only():
    recipes = MoEExperimentConfig.from_mapping(
        {"arms": ["top2", "m8k3", "m8k3-ste"], "baseline": "top2"}, where=""
    ).resolved()["recipes"]
    assert recipes["m8k3"]["aux_schedule"] == "step" and recipes["m8k3"]["aux_loss"] == "null_aware"
    assert recipes["m8k3-ste"]["weights"] == "ste" and (
        recipes["m8k3-ste"]["m"],
        recipes["m8k3-ste"]["k"],
    ) == (8, 3)
    assert recipes["top2"]["aux_schedule"] == "constant"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"lora_targets": ["attention"]}, "lora_targets: expected a subset of"),
        ({"dial_targets": [0.0]}, "dial_targets: expected loads > 0"),
        ({"model": "no-such-model"}, "model: 'no-such-model' is neither a known name"),
        ({"arms": ["top2", "adamoe"]}, "arms: expected names like top2, m8k3"),
        ({"arms": ["top1", "m8k3"], "baseline": "top2"}, "baseline: expected one of the top-k arms"),
        (
            {"arms": ["top2", "top1"], "baseline": "top2", "random_null": True},
            "random_null: needs an AdaMoE arm",
        ),
        ({"full_router": True}, "full_router: the router trains in full"),
        ({"testbed": "core99"}, "testbed: expected one of"),
        ({"arms": ["top4", "top9"], "random_null": False}, "arms: k above the testbed's 8 experts"),
    ],
)
def test_bad_settings_are_one_line_errors(mapping, message):
    with pytest.raises(ValueError, match=message):
        MoEExperimentConfig.from_mapping(mapping, where="")


def test_variant_has_lora_on_router_gate2_and_experts_and_seeded_init():
    moe, tok, _ = ModelSpec.parse("tiny-qwen2_moe").load(routed=False)
    cfg = MoEExperimentConfig().validate()
    models = [prepare_variant(moe, tok, cfg, arm=parse_arm("m8k3"), seed=s) for s in (0, 1, 0)]
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


@pytest.mark.parametrize(
    ("name", "normalize", "cls"),
    [
        ("m8k3", 0, "AdaMoERouter"),
        ("m8k3-opt1", 1, "AdaMoERouter"),
        ("m8k3-ste", 0, "SplitSTERouter"),
        ("m8k3-scaled", 2, "ScaledRouter"),
        ("m8k3-ste-scaled", 2, "ScaledSTERouter"),
    ],
)
def test_arms_set_the_weighting_and_full_router_trains_gate_and_gate2(name, normalize, cls):
    """tiny-qwen2_moe keeps raw top-k scores, so option 2 is its family rule (normalize 0, see convert);
    the scaled kinds are defined on option 2 (normalize 2) and take k_base = the model's own top-k (2)."""
    moe, tok, _ = ModelSpec.parse("tiny-qwen2_moe").load(routed=False)
    cfg = MoEExperimentConfig.from_mapping({"full_router": True, "lora_targets": ["experts"]}, where="")
    model = prepare_variant(moe, tok, cfg, arm=parse_arm(name), seed=0)
    for _, router in routers(model):
        assert (router.normalize, type(router).__name__) == (normalize, cls)
        assert router.weight.requires_grad and router.gate2.requires_grad
        assert router.base_top_k == moe.config.num_experts_per_tok == 2  # k_base of the scaled kinds


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
        "arms": ["top1", "top2", "m8k3"],
        "baseline": "top2",
    }
    cfg = MoEExperimentConfig.from_mapping(settings, where="")
    out = run_moe(cfg, seed=0, run_dir=tmp_path, log=lambda *_: None, command="adamoe reproduce moe --quick")
    rows = {(r["model"], r["task"]): r for r in out["rows"]}
    assert {m for m, _ in rows} == {"untuned", "top1", "top2", "m8k3", "random-m8k3"}
    assert rows[("top2", "average")]["load"] == pytest.approx(2.0)
    assert rows[("top2", "average")]["model_flops_pct"] == pytest.approx(100.0)
    ada = rows[("m8k3", "average")]
    assert 0 < ada["load"] < 3 and ada["expert_flops_pct"] == pytest.approx(100 * ada["load"] / 2)
    assert (ada["model_flops_pct"] < 100) == (ada["load"] < 2)
    assert {r["model"] for r in out["paired"]} == {"top1", "m8k3", "random-m8k3"}
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for dial in metrics["dial"]:
        curve = sorted(dial["curve"], key=lambda p: p["bias"])
        assert len(curve) >= 2 and curve[0]["load"] >= curve[-1]["load"]  # more null bias, less load
    for png in ("sharpness_top2.png", "sharpness_m8k3.png", "compute_dial.png", "load_per_layer.png"):
        assert (tmp_path / png).stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert (
        report.count("Command: adamoe reproduce moe --quick") == 1
        and "True experts per (token, layer)" in report
    )
    _check_control_and_frontier(tmp_path, metrics)


def _check_control_and_frontier(run_dir: Path, metrics: dict) -> None:
    """The control's Load per layer is the AdaMoE arm's of the same seed (a coin per token, so close, not
    equal); each frontier gap is the arm's measure minus the top-1/top-2 line at its FLOPs."""
    from adamoe.experiments.frontier import interp_frontier
    from adamoe.experiments.harness import RunStore
    from adamoe.experiments.tables import layer_loads

    store = RunStore(run_dir)
    for seed in (0, 1):
        ada, control = store.get("m8k3", seed), store.get("random-m8k3", seed)
        matched = layer_loads({"a": [ada["tasks"]]}, "a")
        assert control["matched_loads"] == pytest.approx(matched)
        got = layer_loads({"c": [control["tasks"]]}, "c")
        assert got.keys() == matched.keys() and all(abs(got[g] - matched[g]) < 0.2 for g in got)
        assert len(ada["heldout"]["nll"]) == len(ada["heldout"]["tokens"]) == 4 * 5
        for when in ("before", "after"):  # read on the held-out texts, k = 3 slots with nulls
            hist = ada["token_routing"][when]["histogram"]
            assert len(hist) == 4 and sum(hist) == pytest.approx(1.0)
        assert "token_routing" not in store.get("top2", seed)
    points = {r["point"]: r for r in metrics["frontier"]}
    assert set(points) == {"untuned", "top1", "top2", "m8k3", "random-m8k3"}
    assert points["top1"]["flops"] < points["top2"]["flops"]
    for gap in metrics["frontier_gaps"]:
        arm, m = points[gap["arm"]], gap["metric"]
        line = interp_frontier(
            [points["top1"]["flops"], points["top2"]["flops"]],
            [points["top1"][m], points["top2"][m]],
            arm["flops"],
        )
        assert gap["value"] == pytest.approx(arm[m] - line, nan_ok=True)
    assert {g["arm"] for g in metrics["frontier_gaps"]} == {"m8k3", "random-m8k3"}
    assert {g["metric"] for g in metrics["frontier_gaps"]} == {"nll", "gold_logprob", "acc", "acc_norm"}
    assert (run_dir / "frontier.png").stat().st_size > 0


def test_quick_run_with_scaled_arms_matches_a_scaled_control_and_reports_the_weighting(
    paper_tasks,  # noqa: F811
    tmp_path,
):
    settings = {
        **MoEExperimentConfig.QUICK,
        "model": "tiny-qwen2_moe",
        "tasks": paper_tasks,
        "train_per_task": 4,
        "test_per_task": 8,
        "calib_per_task": 4,
        "dial_per_task": 4,
        "seeds": 1,
        "epochs": 1,
        "heldout_per_task": 2,
        "n_boot": 100,
        "arms": ["top2", "m8k3-scaled", "m8k3-ste-scaled"],
        "baseline": "top2",
    }
    cfg = MoEExperimentConfig.from_mapping(settings, where="")
    assert arm_weights(cfg, "random-m8k3-scaled") == {
        "untuned": "opt2",
        "top2": "opt2",
        "m8k3-scaled": "scaled",
        "m8k3-ste-scaled": "ste-scaled",
        "random-m8k3-scaled": "scaled",
    }
    out = run_moe(cfg, seed=0, run_dir=tmp_path, log=lambda *_: None)
    weights = {r["model"]: r["weights"] for r in out["rows"]}
    assert weights == arm_weights(cfg, "random-m8k3-scaled")
    control = RunStore(tmp_path).get("random-m8k3-scaled", 0)
    assert control["weights"] == "scaled" and set(control["matched_loads"]) == {"0", "1"}
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {r["point"]: r["weights"] for r in metrics["frontier"]} == weights
    report = (tmp_path / "report.md").read_text()
    assert report.count("| model | weights | task |") == 1 and "| point | weights | MFLOPs/token |" in report
    assert "| m8k3-ste-scaled | ste-scaled |" in report and "weighted as scaled)" in report
