"""Suite config: one-line errors naming the field, model specs and dimension lists."""

from __future__ import annotations

from typing import Any

import pytest

from adamoe.rbench.config import QUICK_LIMIT, RBenchConfig, check_model_spec, parse_dims
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
        match=r"safety: unknown key\(s\) colour; valid keys: tasks, task_limit, prompt_limit, harmful, benign",
    ) as err:
        RBenchConfig.from_dict({"safety": {"colour": "red"}})
    assert "\n" not in str(err.value)
    cfg = RBenchConfig.from_dict({"safety": None, "models": None, "dims": "ood,safety,ood"})
    assert cfg.safety == SafetyConfig() and cfg.dims == ["ood", "safety"]
    assert RBenchConfig.from_dict({"max_new_tokens": 4}).hallucination.max_new_tokens == 4


def test_quick_swaps_in_the_smoke_sets_but_keeps_fields_set_explicitly() -> None:
    real = RBenchConfig.from_dict({})
    assert real.hallucination.tasks[0] == "bigbench:truthful_qa" and real.adversarial.nli.startswith(
        "bigbench:"
    )
    assert real.ood.id == "bigbench:epistemic_reasoning" and real.safety.tasks
    quick = RBenchConfig.from_dict({"quick": True, "ood": {"sets": ["generated:movie"]}})
    quick.validate()
    assert quick.hallucination.tasks == [] and quick.hallucination.truthfulqa == "generated"
    assert quick.adversarial.nli == "generated" and quick.safety.harmful == "generated"
    assert quick.ood.id == "generated:product" and quick.ood.pairs == {}
    assert quick.ood.sets == ["generated:movie"]  # set explicitly: kept
    assert quick.limit == QUICK_LIMIT == 10 and RBenchConfig.from_dict({"quick": True, "limit": 3}).limit == 3
