"""Evaluator settings and factory: validated once, and every built evaluator gets the full argument list."""

from __future__ import annotations

from typing import Any

import pytest

from adamoe.eval.settings import EvalSettings, EvaluatorFactory


class _Recorded:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def test_factory_passes_run_wide_and_per_model_arguments() -> None:
    hook = print
    make = EvaluatorFactory(cls=_Recorded, settings=EvalSettings(batch_size=4, progress=True), on_call=hook)
    ev = make(name="m", model="M", tokenizer="T", info={"kind": "dense"}, cache_dir="/c")
    assert ev.kwargs == {
        "name": "m",
        "model": "M",
        "tokenizer": "T",
        "info": {"kind": "dense"},
        "cache_dir": "/c",
        "on_call": hook,
        "batch_size": 4,
        "gen_batch_size": 8,
        "chunk_size": 16,
        "progress": True,
    }
    quiet = make.with_settings(progress=False)
    assert quiet(name="m", model=None, tokenizer=None).kwargs["progress"] is False
    assert make.settings.progress is True  # the original is untouched


def test_settings_validate_with_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"eval.batch_size: expected >= 1, got 0"):
        EvalSettings(batch_size=0)
    with pytest.raises(ValueError, match="unknown key"):
        EvalSettings.from_mapping({"batch": 3})
    assert EvalSettings.from_mapping({"chunk_size": 2}).chunk_size == 2
    with pytest.raises(ValueError, match="gen_batch_size"):
        EvalSettings().replace(gen_batch_size=-1)
