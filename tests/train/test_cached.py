"""Cached fine-tuning: a misfit cache file is a one-line error (reference: the saved names and shapes)."""

from __future__ import annotations

import pytest
import torch

from adamoe.hf.models import resolve_model
from adamoe.train.cached import restore_trained


def test_a_cached_file_that_does_not_fit_the_model_is_a_one_line_error(tmp_path) -> None:
    from safetensors.torch import save_file

    model, _, _ = resolve_model("tiny-llama", seed=0)
    name, param = next(iter(model.named_parameters()))
    save_file({"no.such.weight": torch.zeros(2)}, str(tmp_path / "extra.safetensors"))
    with pytest.raises(ValueError, match=r"holds parameters the model lacks: \['no.such.weight'\]"):
        restore_trained(model, tmp_path / "extra.safetensors")
    save_file({name: torch.zeros(param.shape[0] + 1)}, str(tmp_path / "shape.safetensors"))
    with pytest.raises(ValueError, match="does not fit the model") as err:
        restore_trained(model, tmp_path / "shape.safetensors")
    assert "\n" not in str(err.value)
    saved = {name: torch.full_like(param, 0.5)}
    save_file(saved, str(tmp_path / "fits.safetensors"))
    restore_trained(model, tmp_path / "fits.safetensors")
    assert torch.equal(dict(model.named_parameters())[name], saved[name])
