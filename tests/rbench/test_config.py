"""Suite config: one-line errors naming the field, model specs and dimension lists."""

from __future__ import annotations

from typing import Any

import pytest

from adamoe.rbench.config import RBenchConfig, check_model_spec, parse_dims
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
        ValueError, match=r"safety: unknown key\(s\) colour; valid keys: harmful, benign"
    ) as err:
        RBenchConfig.from_dict({"safety": {"colour": "red"}})
    assert "\n" not in str(err.value)
    cfg = RBenchConfig.from_dict({"safety": None, "models": None, "dims": "ood,safety,ood"})
    assert cfg.safety == SafetyConfig() and cfg.dims == ["ood", "safety"]
    assert RBenchConfig.from_dict({"max_new_tokens": 4}).hallucination.max_new_tokens == 4
