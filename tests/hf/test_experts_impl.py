"""The "adamoe" experts implementation takes the fused decode kernel at small T, with the same output."""

from __future__ import annotations

import pytest
import torch

from adamoe.experts import kernels
from adamoe.hf.models import ModelSpec


@pytest.mark.parametrize("spec", ["tiny-qwen2_moe-adamoe", "tiny-mixtral-adamoe"])
def test_decode_step_uses_the_fused_kernel_and_matches_the_grouped_path(spec, monkeypatch):
    model, _, _ = ModelSpec.parse(spec).load(seed=0)
    ids = torch.randint(5, model.config.vocab_size, (1, 6), generator=torch.Generator().manual_seed(1))
    real, calls = kernels.moe_decode, []

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out

    with torch.no_grad():
        monkeypatch.setattr(kernels, "moe_decode", spy)
        fused = model(input_ids=ids).logits
        monkeypatch.setattr(kernels, "moe_decode", lambda *a, **k: None)  # force the grouped path
        grouped = model(input_ids=ids).logits
    probe = real(
        torch.randn(1, 4),
        torch.randn(2, 6, 4),
        torch.randn(2, 4, 3),
        torch.tensor([[0]]),
        torch.ones(1, 1),
        2,
    )
    if probe is None:
        pytest.skip("decode kernel not built here (no compiler)")
    assert all(calls) and len(calls) == model.config.num_hidden_layers
    torch.testing.assert_close(fused, grouped, atol=1e-5, rtol=1e-5)
