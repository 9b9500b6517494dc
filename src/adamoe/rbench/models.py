"""The models the suite compares, and the guarantee that every MoE among them runs through our dispatch.

Besides every `adamoe.hf.models.ModelSpec` name, the suite knows the paper's pair built from a *real* MoE:

- ``smollm2-moefy``: SmolLM2-135M-Instruct moefied (:mod:`adamoe.hf.moefy`), the MoE table's testbed
  (:data:`adamoe.experiments.moe_model.DEFAULT_TESTBED`: 25% shared core + top-4 of 8 routed
  co-activation groups), the cached build of :func:`adamoe.experiments.moe_model.build_default_moe`
  (same layer as this package); its experts
  genuinely differ, unlike ``smollm2-moe`` whose copied experts give the dense model's logits; with
  ``calib_rows`` (the quick run's `adamoe.rbench.config.QUICK_MOEFY_ROWS`) the testbed's ``max_rows`` is
  replaced, a recipe field, so that build is cached under its own key;
- ``smollm2-moefy-adamoe[:m,k]``: that MoE converted to AdaMoE (m null experts, top-k; defaults
  m = ``DEFAULT_NULL`` and k one above the testbed's, the paper's rule), gate2 = jittered copies of the gate rows, the jitter calibrated
  on the embedded text exactly as for ``smollm2-adamoe`` (:mod:`adamoe.hf.gate2`).

:func:`ensure_dispatch` is applied to every loaded model: an MoE that was loaded unconverted would run
transformers' default experts implementation (each expert's GEMM over all tokens, about 10x slower here)
instead of `adamoe.dispatch`; it is converted with m=0 (same outputs, our dispatch, routing recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from adamoe.hf.models import DEFAULT_NULL, ModelSpec, _num_experts, _parse_mk
from adamoe.utils.config import require

__all__ = [
    "MOEFY",
    "MOEFY_ADAMOE",
    "BuildMoe",
    "check_model_data",
    "check_model_spec",
    "ensure_dispatch",
    "load_model",
]

MOEFY = "smollm2-moefy"
MOEFY_ADAMOE = "smollm2-moefy-adamoe"

BuildMoe = Callable[[], tuple[nn.Module, Any]]
"""() -> (unconverted MoE model, tokenizer); default: the cached moefied SmolLM2."""


def _moefy_parts(spec: str) -> tuple[int, int] | bool | None:
    """False: not a moefy name; None: the plain MoE; (m, k): its AdaMoE conversion."""
    name, colon, mk = spec.partition(":")
    if name == MOEFY:
        require(not colon, f"model: {spec!r}: ':m,k' only follows {MOEFY_ADAMOE} (e.g. {MOEFY_ADAMOE}:8,3)")
        return None
    if name == MOEFY_ADAMOE:
        return _parse_mk(spec, mk) if colon else (DEFAULT_NULL, _testbed().top_k + 1)
    return False


def check_model_spec(spec: str) -> None:
    """Validate a spec without loading anything (so a run fails before any work starts)."""
    if not isinstance(spec, str) or _moefy_parts(spec) is False:
        ModelSpec.parse(spec)


def check_model_data(spec: str, *, calib_rows: int | None = None) -> None:
    """Fail now, in one line, if loading `spec` will need data that is not here.

    Why: the moefied MoE is built once (then cached) from calibration text; without that text a run
    used to fail only after the dense model had been evaluated for minutes. Checked only when the
    build is not cached (`calib_rows`: as for `load_model`); other specs need no data.
    """
    if _moefy_parts(spec) is False:
        return
    from adamoe.experiments.moe_model import calibration_texts
    from adamoe.paths import models_dir

    if (models_dir() / _testbed(calib_rows).key() / "model.safetensors").is_file():
        return
    try:
        calibration_texts()
    except (OSError, RuntimeError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"model {spec!r}: its one-time build (then cached) needs calibration text: {reason}"
        ) from None


def _testbed(calib_rows: int | None = None) -> Any:
    """The testbed's `MoeRecipe`, itself when `calib_rows` is None, else with ``max_rows=calib_rows``."""
    from dataclasses import replace

    from adamoe.experiments.moe_model import DEFAULT_TESTBED, resolve_testbed

    recipe = resolve_testbed(DEFAULT_TESTBED)
    return recipe if calib_rows is None else replace(recipe, max_rows=calib_rows)


def _default_build(calib_rows: int | None = None) -> tuple[nn.Module, Any]:
    from adamoe.experiments.moe_model import build_default_moe

    model, tokenizer, _ = build_default_moe(recipe=_testbed(calib_rows))
    return model, tokenizer


def _load_moefy(
    parts: tuple[int, int] | None, *, seed: int, build_moe: BuildMoe | None, calib_rows: int | None
) -> tuple[nn.Module, Any, dict[str, Any]]:
    from adamoe.hf.convert import convert

    model, tokenizer = build_moe() if build_moe is not None else _default_build(calib_rows)
    base_k = int(model.config.num_experts_per_tok)
    info: dict[str, Any] = {"kind": "moe", "baseline_k": base_k, "num_experts": _num_experts(model.config)}
    if parts is None:
        convert(model, null_experts=0)
    else:
        from adamoe.hf.gate2 import calibration_means

        m, k = parts
        # as for smollm2-adamoe: gate2 jitter orthogonal to each layer's mean router input on the embedded
        # calibration text, so every layer starts near load k*E/(E+m) (see adamoe.hf.gate2)
        calibration = calibration_means(model, tokenizer)
        convert(model, null_experts=m, top_k=k, gate2_init="copy_jitter", seed=seed, calibration=calibration)
        info.update(kind="adamoe", num_null=m, top_k=k)
    return model.eval(), tokenizer, info


def ensure_dispatch(model: nn.Module) -> str | None:
    """Make an MoE model run its experts through `adamoe.dispatch`; returns the implementation (None: dense).

    Why: HF's default experts implementation is what an unconverted MoE runs; converting with m=0 keeps
    the routing and the outputs and selects our implementation (see `adamoe.hf.experts_impl`).
    """
    from adamoe.hf.convert import convert, is_converted
    from adamoe.hf.experts_impl import EXPERTS_IMPLEMENTATION

    if not _num_experts(model.config):
        return None
    if not is_converted(model):
        convert(model, null_experts=0)
    impl = getattr(model.config, "_experts_implementation", None)
    require(
        impl == EXPERTS_IMPLEMENTATION,
        f"model: experts implementation is {impl!r}, expected {EXPERTS_IMPLEMENTATION!r} (our dispatch)",
    )
    return impl


def load_model(
    spec: str, *, seed: int = 0, build_moe: BuildMoe | None = None, calib_rows: int | None = None
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """(model in eval mode, tokenizer, info) for any spec the suite accepts; MoEs run our dispatch.

    `build_moe` replaces the cached moefied SmolLM2 (tests use a tiny moefied model); `calib_rows`
    (None: the testbed's own) sets that build's calibration rows, the quick run's cheaper build.
    """
    parts = _moefy_parts(spec)
    if parts is False:
        model, tokenizer, info = ModelSpec.parse(spec).load(seed=seed)
    else:
        model, tokenizer, info = _load_moefy(parts, seed=seed, build_moe=build_moe, calib_rows=calib_rows)
    impl = ensure_dispatch(model)
    return model.eval(), tokenizer, {"spec": spec, **info, "experts_impl": impl}
