"""The demo's library stages: config defaults and errors, the two MoE variants, the YAML in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from adamoe.experiments.demo import DemoConfig, build_models, make_variants
from adamoe.hf.convert import routers
from adamoe.hf.models import DEFAULT_NULL, DEFAULT_TOP_K
from adamoe.runs import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"


def test_defaults_come_from_the_model_spec_constants():
    cfg = DemoConfig().validate()
    assert (cfg.null_experts, cfg.top_k) == (DEFAULT_NULL, DEFAULT_TOP_K)


def test_example_yaml_spells_out_exactly_the_defaults():
    assert DemoConfig.from_mapping(load_config(EXAMPLE), where="") == DemoConfig().validate()


def test_quick_keeps_the_user_settings_it_does_not_shrink():
    cfg = DemoConfig.from_mapping({"lr": 1e-4, "null_experts": 4}, where="").quick()
    assert (cfg.model, cfg.epochs, cfg.lr, cfg.null_experts) == ("tiny-llama", 1, 1e-4, 4)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"nonsense": 1}, "unknown key(s) nonsense"),
        ({"baseline_k": 9}, "baseline_k: expected <= num_experts=8"),
        ({"trainable": "most"}, "trainable: expected one of"),
        ({"epochs": 0}, "epochs: expected >= 1"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(mapping, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DemoConfig.from_mapping(mapping, where="")


@pytest.mark.parametrize("build", ["upcycle", "moefy"])
def test_variants_are_the_top_k_baseline_and_adamoe_with_nulls(build):
    cfg = DemoConfig(moe=build).validate().quick()
    _, _, moe = build_models(cfg, seed=0)
    base, ada = make_variants(moe, cfg, seed=0)
    base_routers, ada_routers = routers(base), routers(ada)
    assert base_routers and len(base_routers) == len(ada_routers)
    for (_, b), (_, a) in zip(base_routers, ada_routers):
        assert (b.num_null, b.top_k) == (0, cfg.baseline_k)
        assert (a.num_null, a.top_k) == (cfg.null_experts, cfg.top_k)
        assert a.weight is not b.weight  # AdaMoE is a copy, not the baseline converted twice
    expected = {"upcycle": "MixtralForCausalLM", "moefy": "Qwen2MoeForCausalLM"}[build]
    assert type(base).__name__ == type(ada).__name__ == expected
