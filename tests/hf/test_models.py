"""ModelSpec: the one model-spec grammar, checked without loading; loading tiny specs gives the right kind."""

from __future__ import annotations

import json

import pytest

from adamoe.hf.models import DEFAULT_NULL, DEFAULT_TOP_K, KNOWN_NAMES, VALID_FORMS, ModelSpec, resolve_model


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smollm2", {"source": "smollm2", "upcycle": False, "num_null": None, "top_k": None}),
        ("default", {"source": "smollm2", "upcycle": False, "num_null": None}),
        ("smollm2-moe", {"source": "smollm2", "upcycle": True, "num_null": None}),
        ("smollm2-adamoe", {"source": "smollm2", "upcycle": True, "num_null": 8, "top_k": 3}),
        ("smollm2-adamoe:16,4", {"source": "smollm2", "upcycle": True, "num_null": 16, "top_k": 4}),
        ("tiny-llama", {"source": "tiny", "family": "llama", "num_null": None}),
        ("tiny-mixtral-adamoe", {"source": "tiny", "family": "mixtral", "num_null": 8, "top_k": 3}),
        ("tiny-qwen2_moe-adamoe:0,2", {"source": "tiny", "family": "qwen2_moe", "num_null": 0, "top_k": 2}),
    ],
)
def test_known_specs_parse_to_their_fields(text, expected):
    spec = ModelSpec.parse(text)
    assert spec.text == text and spec.path is None
    assert {key: getattr(spec, key) for key in expected} == expected
    assert spec.adamoe == (expected["num_null"] is not None)


def test_defaults_are_the_papers_m8_k3():
    assert (DEFAULT_NULL, DEFAULT_TOP_K) == (8, 3)


def test_a_saved_folder_parses_only_with_a_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({}))
    spec = ModelSpec.parse(str(tmp_path))
    assert (spec.source, spec.path) == ("folder", tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"model: expected a model spec ({VALID_FORMS}), got ''"),
        (None, f"model: expected a model spec ({VALID_FORMS}), got None"),
        (
            "/no/such",
            f"model: '/no/such' is neither a known name ({KNOWN_NAMES}) nor a folder with config.json",
        ),
        (
            "smollm2-adamoe:16",
            "model: expected '<name>:m,k' with integers, got 'smollm2-adamoe:16' (e.g. smollm2-adamoe:16,4)",
        ),
        (
            "smollm2-adamoe:a,b",
            "model: expected '<name>:m,k' with integers, got 'smollm2-adamoe:a,b' (e.g. smollm2-adamoe:16,4)",
        ),
        (
            "smollm2-adamoe:-1,3",
            "model: expected '<name>:m,k' with integers, got 'smollm2-adamoe:-1,3' (e.g. smollm2-adamoe:16,4)",
        ),
        ("smollm2-adamoe:8,0", "model: 'smollm2-adamoe:8,0': top-k must be >= 1, got 0"),
        ("smollm2-moe:8,3", f"model: 'smollm2-moe:8,3': ':m,k' only follows an -adamoe spec ({VALID_FORMS})"),
        (
            "tiny-gpt9",
            "model: 'tiny-gpt9' names unknown tiny family 'gpt9'; expected one of llama, qwen2, mistral, mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2, deepseek_v3",
        ),
        (
            "tiny-llama-adamoe",
            "model: 'tiny-llama-adamoe': tiny-llama is dense; -adamoe needs an MoE family (mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2, deepseek_v3)",
        ),
    ],
)
def test_bad_specs_are_one_exact_line(text, message):
    with pytest.raises(ValueError) as err:
        ModelSpec.parse(text)
    assert str(err.value) == message


def test_a_folder_without_tokenizer_fails_before_loading_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({}))
    with pytest.raises(ValueError, match="has no tokenizer files"):
        ModelSpec.parse(str(tmp_path)).load()


def test_tiny_specs_load_with_their_kind_and_k():
    _, _, dense = ModelSpec.parse("tiny-llama").load(seed=0)
    assert dense == {"spec": "tiny-llama", "kind": "dense", "baseline_k": None}
    model, tok, moe = resolve_model("tiny-mixtral", seed=0)
    assert moe == {"spec": "tiny-mixtral", "kind": "moe", "baseline_k": 2}
    assert model.config.adamoe["null_experts"] == 0 and not model.training  # routed: converted with m=0
    raw, _, _ = ModelSpec.parse("tiny-mixtral").load(seed=0, routed=False)
    assert getattr(raw.config, "adamoe", None) is None
    ada, _, info = ModelSpec.parse("tiny-mixtral-adamoe:5,4").load(seed=0)
    assert info == {
        "spec": "tiny-mixtral-adamoe:5,4",
        "kind": "adamoe",
        "baseline_k": 2,
        "num_null": 5,
        "top_k": 4,
    }
    assert (ada.config.adamoe["null_experts"], ada.config.adamoe["top_k"]) == (5, 4)
    assert len(tok) == 259


def test_load_casts_to_the_requested_dtype():
    import torch

    model, _, _ = ModelSpec.parse("tiny-llama").load(seed=0, dtype=torch.bfloat16, device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16} and not model.training
