"""LoRA on the fused experts computed low-rank (adamoe.hf.lora_experts): the same function and gradients
as the merged weights, nothing of the experts' size kept for backward, PEFT's save format and merge."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import PeftModel, get_peft_model
from torch.nn import functional as F

from adamoe import dispatch as dsp
from adamoe.bench.saved import saved_expert_bytes
from adamoe.hf import experts_impl, lora_experts
from adamoe.hf.convert import convert
from adamoe.hf.io import load, save
from adamoe.hf.peft_utils import load_adapter, lora_config_for
from adamoe.hf.tiny import tiny_model
from tests.hf.test_peft import TOKENS, logits_of, wrapped

FAMILIES = ("mixtral", "qwen2_moe")
NULLS = 4


def converted(family: str, null_type: str = "zero") -> torch.nn.Module:
    return convert(
        tiny_model(family), null_experts=NULLS, top_k=3, null_type=null_type, gate2_init="random", seed=1
    )


def peft_pair(family: str, null_type: str = "zero") -> tuple[torch.nn.Module, torch.nn.Module]:
    """The low-rank model and PEFT's merging one with the same, non-zero, LoRA weights (B drawn, not 0)."""
    base = converted(family, null_type)
    low = get_peft_model(copy.deepcopy(base), lora_config_for(base, rank=4, alpha=8))
    merging = get_peft_model(
        copy.deepcopy(base), lora_config_for(base, rank=4, alpha=8, low_rank_experts=False)
    )
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for (name, p), (_, q) in zip(low.named_parameters(), merging.named_parameters()):
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
            q.copy_(p)
    return low, merging


def lora_params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if "lora_" in n}


def naive_experts(experts, gate_up, down, hidden, index, weights):
    """Token by token, slot by slot, SwiGLU through the given (merged) weights; nulls per the module."""
    inter = down.shape[2]
    rows = []
    for x, idx, w in zip(hidden, index, weights):
        acc = torch.zeros_like(x)
        for e, we in zip(idx.tolist(), w):
            if 0 <= e < experts.num_experts:
                g, u = gate_up[e, :inter] @ x, gate_up[e, inter:] @ x
                acc = acc + we * (down[e] @ (F.silu(g) * u))
            elif e >= experts.num_experts and experts.adamoe_null_type == "identity":
                acc = acc + we * x
        rows.append(acc)
    return torch.stack(rows)


@pytest.mark.parametrize("null_type", ["zero", "identity"])
@pytest.mark.parametrize("family", FAMILIES)
def test_experts_output_and_lora_gradients_equal_the_merged_weights_loop(family, null_type):
    low, _ = peft_pair(family, null_type)
    wrappers = wrapped(low)
    gate_up_w, down_w = (
        wrappers["model.layers.0.mlp.experts.gate_up_proj"],
        wrappers["model.layers.0.mlp.experts.down_proj"],
    )
    assert isinstance(gate_up_w, lora_experts.ParamWrapper) and isinstance(down_w, lora_experts.ParamWrapper)
    outer = low.get_submodule("base_model.model.model.layers.0.mlp.experts")
    experts = gate_up_w.get_base_layer()
    gen = torch.Generator().manual_seed(3)
    hidden = torch.randn(12, experts.gate_up_proj.shape[2], generator=gen, requires_grad=True)
    index = torch.randint(0, experts.num_experts + NULLS, (12, 3), generator=gen)
    index[0, 2] = -1  # an empty slot
    weights = torch.rand(12, 3, generator=gen, requires_grad=True)
    probe = torch.randn(12, hidden.shape[1], generator=gen)
    leaves = [hidden, weights] + [w.lora_A["default"].weight for w in (gate_up_w, down_w)]
    leaves += [w.lora_B["default"].weight for w in (gate_up_w, down_w)]

    out = outer(hidden, index, weights)
    got = torch.autograd.grad((out * probe).sum(), leaves)
    assert not hasattr(experts, "adamoe_lora")  # the factors lived for the forward only
    # Reference: PEFT's own delta (get_delta_weight, the merge path's formula) added to W, a naive loop.
    gate_up = experts.gate_up_proj + gate_up_w.get_delta_weight("default")
    down = experts.down_proj + down_w.get_delta_weight("default")
    want_out = naive_experts(experts, gate_up, down, hidden, index, weights)
    want = torch.autograd.grad((want_out * probe).sum(), leaves)

    torch.testing.assert_close(out, want_out, atol=1e-5, rtol=1e-5)
    for name, g, w in zip(("hidden", "weights", "A_gate_up", "A_down", "B_gate_up", "B_down"), got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5, msg=name)
        assert g.abs().sum() > 0, name


@pytest.mark.parametrize("path", ["counted", "sync_free"])
@pytest.mark.parametrize("family", FAMILIES)
def test_whole_model_equals_peft_merging_and_keeps_no_expert_copy(family, path, monkeypatch):
    """Logits and every LoRA gradient equal PEFT's merging wrapper's; the saved expert-sized bytes are 0
    low-rank and at least the experts' own size per layer merging (fails if the merge comes back)."""
    if path == "sync_free":  # CUDA's device path, exercised on CPU
        monkeypatch.setattr(dsp, "SYNC_FREE_DEVICES", ("cpu",))
    low, merging = peft_pair(family)
    tokens = TOKENS[:, :6]  # few tokens: activations stay below the expert-weight size the count uses
    experts_impl._warn_merged.cache_clear()  # said once per process: make this test see it
    with pytest.warns(UserWarning, match="merged on every forward"):
        merged_saved = saved_expert_bytes(merging, lambda: merging(tokens).logits)
    low_saved = saved_expert_bytes(low, lambda: low(tokens).logits)
    experts = [m for m in low.modules() if hasattr(m, "adamoe_num_null") and hasattr(m, "down_proj")]
    expert_bytes = sum(p.numel() * p.element_size() for p in (experts[0].gate_up_proj, experts[0].down_proj))
    assert low_saved.total == 0, low_saved.shapes
    # Merging keeps W + ΔW of both projections per layer (only down's in layer 0 on the device path, whose
    # input there needs no gradient, so torch._grouped_mm does not keep gate_up for it).
    assert merged_saved.total >= expert_bytes

    probe = torch.randn(logits_of(low).shape, generator=torch.Generator().manual_seed(4))
    out_low, out_merging = low(TOKENS).logits, merging(TOKENS).logits
    torch.testing.assert_close(out_low, out_merging, atol=1e-5, rtol=1e-5)
    grads_low = torch.autograd.grad((out_low * probe).sum(), list(lora_params(low).values()))
    grads_merging = torch.autograd.grad((out_merging * probe).sum(), list(lora_params(merging).values()))
    for name, g, w in zip(lora_params(low), grads_low, grads_merging):
        # Through two layers and the LM head the LoRA gradients reach ~1e2: compare relative to the largest.
        scale = w.abs().max().clamp_min(1.0)
        torch.testing.assert_close(g / scale, w / scale, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("family", FAMILIES)
def test_decode_sized_inference_equals_peft_merging(family):
    """At T <= 8 under no_grad the fused decode kernel knows nothing of LoRA factors: the grouped path runs."""
    low, merging = peft_pair(family)
    one = TOKENS[:1, :3]
    torch.testing.assert_close(
        logits_of_tokens(low, one), logits_of_tokens(merging, one), atol=1e-5, rtol=1e-5
    )


def logits_of_tokens(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens).logits


def test_save_reload_and_merge_keep_peft_format(tmp_path):
    low, merging = peft_pair("mixtral")
    save(converted("mixtral"), tmp_path / "base")
    low.save_pretrained(tmp_path / "low")
    merging.save_pretrained(tmp_path / "merging")
    from safetensors.torch import load_file

    saved_low = load_file(tmp_path / "low" / "adapter_model.safetensors")
    saved_merging = load_file(tmp_path / "merging" / "adapter_model.safetensors")
    assert sorted(saved_low) == sorted(saved_merging)  # the same keys as PEFT's own wrapper writes
    assert all(torch.equal(saved_low[k], saved_merging[k]) for k in saved_low)

    reloaded = load_adapter(load(tmp_path / "base"), tmp_path / "low")
    assert all(
        isinstance(w, lora_experts.ParamWrapper) for n, w in wrapped(reloaded).items() if "experts" in n
    )
    assert torch.equal(logits_of(reloaded), logits_of(low))
    # A save by PEFT's merging wrapper loads too, and plain PeftModel.from_pretrained still works (merging).
    assert torch.equal(logits_of(load_adapter(load(tmp_path / "base"), tmp_path / "merging")), logits_of(low))
    plain = PeftModel.from_pretrained(load(tmp_path / "base"), tmp_path / "low")
    torch.testing.assert_close(logits_of(plain), logits_of(low), atol=1e-5, rtol=1e-5)

    # merge_and_unload: the inherited W += get_delta_weight, bit for bit PEFT's merge.
    merged_low = low.merge_and_unload().state_dict()
    merged_merging = merging.merge_and_unload().state_dict()
    assert sorted(merged_low) == sorted(merged_merging)
    assert all(torch.equal(merged_low[k], merged_merging[k]) for k in merged_low)
