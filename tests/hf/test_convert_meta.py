"""Conversion and loading on the meta device, as ranks > 0 of a cpu-RAM-efficient FSDP run do them.

Such a rank builds the model, converts it and adds LoRA without any weight; FSDP then fills it from
rank 0. The reference: rank 0's model, built with real weights the ordinary way. The meta model must
hold no weight, have the same state-dict keys, shapes and dtypes, and, once rank 0's tensors are assigned
into it (parameters and buffers, what the broadcast delivers), give rank 0's logits exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import adamoe.hf  # noqa: F401  (registers the adamoe_<family> Auto classes)
from adamoe.hf.convert import GATE2_INITS, convert
from adamoe.hf.io import load, save
from adamoe.hf.tiny import tiny_model
from adamoe.train.lora import LoRASettings, apply_lora

IDS = torch.arange(2 * 7).reshape(2, 7) * 5 % 128


def converted(family: str, init: str) -> nn.Module:
    model = tiny_model(family, seed=0)
    return convert(model, null_experts=2, top_k=3, gate2_init=init, seed=0)


def fill_from(meta: nn.Module, real: nn.Module) -> nn.Module:
    """``meta`` with ``real``'s parameters and buffers assigned (what FSDP's broadcast gives rank > 0)."""
    meta.load_state_dict(real.state_dict(), strict=True, assign=True)
    for name, buffer in real.named_buffers():
        owner, _, local = name.rpartition(".")
        setattr(meta.get_submodule(owner), local, buffer.clone())
    return meta


def layout(model: nn.Module) -> dict[str, tuple]:
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=IDS).logits


@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe"])
@pytest.mark.parametrize("init", GATE2_INITS)
def test_convert_on_meta_matches_the_real_conversion_once_filled(family: str, init: str) -> None:
    real = converted(family, init)
    with torch.device("meta"):
        meta = converted(family, init)
    assert all(t.is_meta for t in [*meta.parameters(), *meta.buffers()])
    assert layout(meta) == layout(real)
    assert meta.config.adamoe == real.config.adamoe
    torch.testing.assert_close(logits(fill_from(meta, real)), logits(real), rtol=0, atol=0)


def test_lora_on_a_meta_converted_model_holds_no_weight_and_fills_to_rank_0s() -> None:
    settings = LoRASettings(rank=4, alpha=8)
    real = apply_lora(converted("mixtral", "copy_jitter"), settings, seed=0)
    with torch.no_grad():  # B != 0, so the LoRA path counts in the logits
        for name, param in real.named_parameters():
            if "lora_B" in name:
                param.normal_()
    with torch.device("meta"):
        meta = apply_lora(converted("mixtral", "copy_jitter"), settings, seed=0)
    assert all(t.is_meta for t in [*meta.parameters(), *meta.buffers()])
    assert layout(meta) == layout(real)
    assert [n for n, p in meta.named_parameters() if p.requires_grad] == [
        n for n, p in real.named_parameters() if p.requires_grad
    ]
    torch.testing.assert_close(logits(fill_from(meta, real)), logits(real), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_load_inside_a_meta_context_reads_no_weight(tmp_path: Path, dtype: torch.dtype) -> None:
    """``adamoe.hf.load`` under ``torch.device("meta")`` builds the saved converted model from its config,
    in the checkpoint's dtype (as from_pretrained gives it); filled with the real load's tensors, equal."""
    save(converted("qwen2_moe", "copy_jitter").to(dtype), tmp_path / "m")
    real = load(tmp_path / "m")
    with torch.device("meta"):
        meta = load(tmp_path / "m")
    assert real.dtype == dtype
    assert all(t.is_meta for t in [*meta.parameters(), *meta.buffers()])
    assert layout(meta) == layout(real)
    torch.testing.assert_close(logits(fill_from(meta, real)), logits(real), rtol=0, atol=0)
    with torch.device("meta"):
        assert load(tmp_path / "m", dtype=torch.float32).dtype == torch.float32
