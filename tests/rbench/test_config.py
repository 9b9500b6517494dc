"""Suite config: one-line errors naming the field, model specs and dimension lists."""

from __future__ import annotations

from typing import Any

import pytest

from adamoe.rbench.config import QUICK_LIMIT, QUICK_MOEFY_ROWS, RBenchConfig, check_model_spec, parse_dims
from adamoe.rbench.dimensions.safety import SafetyConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dims": ["safety", "robustness"]}, "unknown dimension"),
        ({"models": ["/no/such/model"]}, "neither a known name"),
        ({"models": ["tiny-notafamily"]}, "unknown tiny family"),
        ({"limit": 0}, "limit"),
        ({"colour": "red"}, "unknown key"),
        ({"safety": {"max_new_tokens": 0}}, "safety.max_new_tokens"),
        ({"adversarial": {"attacks": {"x": {"kinds": ["laser"]}}}}, "attacks.x"),
        ({"ood": {"shifts": ["sideways"]}}, "shifts"),
    ],
)
def test_config_errors_are_one_line_and_name_the_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        RBenchConfig.from_dict(settings).validate()
    assert "\n" not in str(err.value)


def test_model_specs_and_dims_parse() -> None:
    for spec in ("smollm2", "smollm2-adamoe:16,4", "tiny-mixtral-adamoe"):
        check_model_spec(spec)
    with pytest.raises(ValueError, match="m,k"):
        check_model_spec("smollm2-adamoe:16")
    assert parse_dims("ood, safety,ood") == ["ood", "safety"]


def test_unknown_section_keys_list_the_valid_ones_and_null_sections_mean_defaults() -> None:
    with pytest.raises(
        ValueError,
        match=r"safety: unknown key\(s\) colour; valid keys: prompt_limit, harmful, benign, toxicity",
    ) as err:
        RBenchConfig.from_dict({"safety": {"colour": "red"}})
    assert "\n" not in str(err.value)
    cfg = RBenchConfig.from_dict({"safety": None, "models": None, "dims": "ood,safety,ood"})
    assert cfg.safety == SafetyConfig() and cfg.dims == ["ood", "safety"]
    assert RBenchConfig.from_dict({"max_new_tokens": 4}).hallucination.max_new_tokens == 4


def test_defaults_are_offline_tasks_and_quick_needs_no_optional_download() -> None:
    from adamoe.data import known_tasks
    from adamoe.data.closed_book import CLOSED_BOOK
    from adamoe.data.spans import SPAN_PATTERNS

    real = RBenchConfig.from_dict({})
    for name in [*real.adversarial.tasks, real.ood.id, *real.ood.sets, real.ood.pairs["science"]["id"]]:
        assert name in SPAN_PATTERNS and name in known_tasks()
    assert set(real.hallucination.closed_book) <= set(CLOSED_BOOK) and real.hallucination.claims == "auto"
    assert real.safety.harmful == "auto" and set(real.finetune.tasks) <= set(known_tasks())
    quick = RBenchConfig.from_dict({"quick": True, "ood": {"sets": ["sst2"]}})
    quick.validate()
    assert quick.hallucination.claim_sets() == [] and quick.safety.harmful == "generated"
    assert quick.safety.toxicity == "generated" and quick.adversarial.tasks == ["rte"]
    assert quick.ood.id == "rte" and quick.ood.pairs == {}
    assert quick.ood.sets == ["sst2"]  # set explicitly: kept
    assert quick.limit == QUICK_LIMIT == 10 and RBenchConfig.from_dict({"quick": True, "limit": 3}).limit == 3


def test_quick_builds_the_moefied_moe_on_a_quarter_of_the_calibration_rows() -> None:
    from adamoe.experiments.moe_model import DEFAULT_TESTBED, TESTBEDS

    full_rows = TESTBEDS[DEFAULT_TESTBED].max_rows
    assert full_rows == 32 and QUICK_MOEFY_ROWS == 8 == full_rows // 4
    assert RBenchConfig.from_dict({"quick": True}).validate().moefy_calib_rows() == 8
    assert RBenchConfig.from_dict({}).validate().moefy_calib_rows() is None  # the testbed's own rows
    assert "moefy_calib_rows" not in RBenchConfig.from_dict({}).to_dict()  # the report's config unchanged


def test_quick_cuts_work_but_keeps_every_path_and_leaves_the_full_defaults() -> None:
    from adamoe.rbench.dimensions.adversarial import budget

    quick = RBenchConfig.from_dict({"quick": True}).validate()
    # toxicity: two sampled streams (the per-sample path runs) of 4 tokens; answers keep 16
    assert (quick.safety.n_samples, quick.safety.toxicity_max_new_tokens) == (2, 4)
    assert quick.safety.max_new_tokens == 16 and quick.hallucination.max_new_tokens == 8
    # OOD: one surface shift and one neighbour pair (RTE -> CB)
    assert [c.name for c in quick.ood.shift_configs(seed=0)] == ["typos0.1"]
    assert quick.ood.all_pairs() == {"rte": ("rte", ["cb"])}
    # query budgets by hand: 1 + max_edits x max_positions x (candidates per position)
    budgets = {n: budget(quick.adversarial.attack_config(n, seed=0)) for n in ("char", "word", "typo")}
    assert budgets == {"char": 1 + 1 * 4 * 2, "word": 1 + 1 * 2 * 2, "typo": 1 + 1 * 1 * 1}
    assert quick.finetune.max_steps == 1
    # the full run: defaults untouched (so are its cache keys)
    full = RBenchConfig.from_dict({}).validate()
    safety = full.safety
    assert (safety.n_samples, safety.toxicity_max_new_tokens, safety.max_new_tokens) == (3, 20, 32)
    assert full.ood.shifts == "default" and len(full.ood.shift_configs(seed=0)) == 4
    assert full.finetune.max_steps == 16 and full.adversarial.attack_config("word", seed=0).max_queries == 60
    assert budget(full.adversarial.attack_config("char", seed=0)) == 1 + 2 * 8 * 3
