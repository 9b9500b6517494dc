"""The suite's model specs: the moefied pair (experts that differ) and our dispatch for every MoE.

References: the dense model the MoE was built from (its logits must differ: the experts are not copies),
transformers' own experts implementation (same outputs as ours, but it never enters `adamoe.dispatch`).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import adamoe.hf.experts_impl as experts_impl
from adamoe.hf.models import ModelSpec, resolve_model
from adamoe.rbench.config import DEFAULT_MODELS, RBenchConfig
from adamoe.rbench.models import check_model_spec, ensure_dispatch, load_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny_moefied() -> tuple[Any, Any]:
    """A tiny-llama moefied (4 groups, top-2) on random calibration ids: a stand-in for the cached build."""
    from adamoe.hf.moefy import moefy

    dense, tok, _ = resolve_model("tiny-llama", seed=0)
    ids = torch.randint(int(dense.config.vocab_size), (8, 16), generator=torch.Generator().manual_seed(0))
    return moefy(dense, calib_tokens=ids, num_experts=4, top_k=2, seed=0).model, tok


@pytest.fixture
def dispatch_calls(monkeypatch) -> list[int]:
    """Counts the calls of `adamoe.dispatch.dispatch` made by our experts implementation."""
    calls: list[int] = []
    real = experts_impl.dispatch

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(experts_impl, "dispatch", counting)
    return calls


def _logits(model: Any) -> torch.Tensor:
    ids = torch.arange(3, 19).reshape(2, 8)
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_default_models_are_dense_vs_moefied_moe_vs_its_adamoe_conversion() -> None:
    assert DEFAULT_MODELS == ("smollm2", "smollm2-moefy", "smollm2-moefy-adamoe")
    assert RBenchConfig.from_dict({}).validate().models == list(DEFAULT_MODELS)


@pytest.mark.parametrize("spec", ["smollm2-moefy", "smollm2-moefy-adamoe", "smollm2-moefy-adamoe:4,2"])
def test_moefy_specs_parse_without_loading(spec: str) -> None:
    check_model_spec(spec)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("smollm2-moefy:4,2", "only follows smollm2-moefy-adamoe"),
        ("smollm2-moefy-adamoe:x", "integers"),
        ("smollm2-moefy-adamoe:4,0", "top-k must be >= 1"),
        ("smollm2-moefied", "neither a known name"),
    ],
)
def test_bad_moefy_specs_are_one_line_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_model_spec(spec)


def test_moefy_spec_loads_an_moe_whose_experts_differ_and_that_runs_our_dispatch(dispatch_calls) -> None:
    moe, _, info = load_model("smollm2-moefy", seed=0, build_moe=_tiny_moefied)
    assert info["kind"] == "moe" and info["baseline_k"] == 2 and info["num_experts"] == 4
    assert info["experts_impl"] == "adamoe" and moe.config.adamoe["null_experts"] == 0
    got = _logits(moe)
    assert len(dispatch_calls) == moe.config.num_hidden_layers  # every MoE block went through dispatch
    dense, _, _ = resolve_model("tiny-llama", seed=0)
    assert (got - _logits(dense)).abs().max() > 1e-3  # not an upcycled copy of the dense model


def test_moefy_adamoe_spec_converts_with_the_given_nulls_and_top_k() -> None:
    ada, _, info = load_model("smollm2-moefy-adamoe:3,3", seed=0, build_moe=_tiny_moefied)
    assert (info["kind"], info["num_null"], info["top_k"], info["baseline_k"]) == ("adamoe", 3, 3, 2)
    assert ada.config.adamoe["null_experts"] == 3 and ada.config.adamoe["top_k"] == 3
    assert ada.config.adamoe.get("gate2_calibrated") is True  # the same gate2 init as smollm2-adamoe
    assert info["experts_impl"] == "adamoe"


def test_an_unconverted_moe_is_switched_to_our_dispatch_with_the_same_outputs(dispatch_calls) -> None:
    model, _, _ = ModelSpec.parse("tiny-mixtral").load(seed=0, routed=False)
    reference = _logits(model)  # transformers' own experts implementation
    assert dispatch_calls == []  # the reference did not use ours: the counter can tell the difference
    assert ensure_dispatch(model) == "adamoe"
    assert torch.allclose(_logits(model), reference, atol=1e-5)
    assert len(dispatch_calls) == model.config.num_hidden_layers


def test_dense_models_need_no_dispatch() -> None:
    _, _, info = load_model("tiny-llama", seed=0)
    assert info["experts_impl"] is None and info["kind"] == "dense"


def test_calibration_rows_name_their_own_build_and_none_is_the_testbed_itself(monkeypatch, tmp_path) -> None:
    """The quick build differs from the testbed only in ``max_rows`` and is cached under its own key;
    without rows, load and the data check use the testbed recipe object itself (key unchanged)."""
    from dataclasses import replace

    from adamoe.experiments import moe_model
    from adamoe.rbench.models import check_model_data

    testbed = moe_model.TESTBEDS[moe_model.DEFAULT_TESTBED]
    recipes: list[Any] = []

    def build(*, recipe: Any) -> tuple[Any, Any, dict]:
        recipes.append(recipe)
        return (*_tiny_moefied(), {})

    monkeypatch.setattr(moe_model, "build_default_moe", build)
    load_model("smollm2-moefy", seed=0)
    load_model("smollm2-moefy", seed=0, calib_rows=8)
    assert recipes[0] is testbed and recipes[1] == replace(testbed, max_rows=8)
    assert recipes[1].key() != testbed.key()

    def no_text() -> list[str]:
        raise OSError("no calibration text here")

    monkeypatch.setattr("adamoe.paths.models_dir", lambda: tmp_path)
    monkeypatch.setattr(moe_model, "calibration_texts", no_text)
    (tmp_path / recipes[1].key()).mkdir()
    (tmp_path / recipes[1].key() / "model.safetensors").write_bytes(b"")
    check_model_data("smollm2-moefy", calib_rows=8)  # cached under the quick key: no text needed
    with pytest.raises(ValueError, match="needs calibration text"):
        check_model_data("smollm2-moefy")  # the testbed's own key is not cached here
