"""PEFT interop: LoRA on gate, gate2 and the fused experts trains, saves and reloads; QLoRA needs CUDA."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import get_peft_model
from peft.tuners.lora.layer import ParamWrapper

from adamoe.hf.convert import convert
from adamoe.hf.io import load, save
from adamoe.hf.peft_utils import bnb_4bit_config, load_adapter, lora_config_for, lora_target_parameters
from adamoe.hf.tiny import MOE_FAMILIES, tiny_model
from adamoe.losses import routing_aux_loss
from adamoe.stats import collect_routings

TOKENS = torch.tensor([[5, 17, 99, 3, 64, 23, 8, 41, 77, 12], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])


def converted(family: str = "mixtral") -> torch.nn.Module:
    return convert(tiny_model(family), null_experts=4, top_k=3, gate2_init="random", seed=1)


def logits_of(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(TOKENS).logits


def wrapped(model: torch.nn.Module) -> dict[str, ParamWrapper]:
    """LoRA wrappers by the name of the parameter they adapt, e.g. ``...mlp.gate.gate2``."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, ParamWrapper):
            owner = name.replace(".base_layer", "").removeprefix("base_model.model.")
            out[f"{owner}.{module.parameter_name}"] = module
    return out


def test_targets_are_the_router_weights_and_fused_experts():
    model = converted("qwen2_moe")
    assert lora_target_parameters(model) == [
        "mlp.experts.down_proj",
        "mlp.experts.gate_up_proj",
        "mlp.gate.gate2",
        "mlp.gate.weight",
    ]
    assert lora_target_parameters(model, ["router"]) == ["mlp.gate.gate2", "mlp.gate.weight"]
    assert lora_target_parameters(convert(tiny_model("olmoe"), null_experts=0), ["router"]) == [
        "mlp.gate.weight"
    ]

    config = lora_config_for(model, rank=4, alpha=8)
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 8, 0.0)
    peft_model = get_peft_model(model, config)
    # Qwen2-MoE's shared_expert_gate.weight must not be caught by the suffix match.
    assert sorted(wrapped(peft_model)) == sorted(
        f"model.layers.{i}.mlp.{p}"
        for i in range(2)
        for p in ("gate.weight", "gate.gate2", "experts.gate_up_proj", "experts.down_proj")
    )


@pytest.mark.parametrize("family", MOE_FAMILIES)
def test_lora_starts_at_the_base_model_trains_and_reloads(family, tmp_path):
    base = converted(family)
    save(base, tmp_path / "base")
    peft_model = get_peft_model(copy.deepcopy(base), lora_config_for(base))
    # LoRA B = 0 at init; equal to round-off: the experts' low-rank path runs other GEMMs than the base's.
    torch.testing.assert_close(logits_of(peft_model), logits_of(base), atol=1e-6, rtol=1e-6)

    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    losses = []
    for step in range(4):
        lm = peft_model(TOKENS, labels=TOKENS).loss
        aux = sum(routing_aux_loss(r) for r in collect_routings(peft_model))
        (lm + 1e-2 * aux).backward()
        if step == 0:
            frozen_grads = [
                n for n, p in peft_model.named_parameters() if not p.requires_grad and p.grad is not None
            ]
            assert frozen_grads == []
            for name, module in wrapped(peft_model).items():  # every adapted tensor learns (B starts at 0)
                assert module.lora_B["default"].weight.grad.abs().sum() > 0, name
        optimizer.step()
        optimizer.zero_grad()
        losses.append(lm.item())
    assert losses[-1] < losses[0]

    peft_model.eval()
    tuned = logits_of(peft_model)
    assert (tuned - logits_of(base)).abs().max() > 1e-3
    peft_model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    reloaded = load_adapter(load(tmp_path / "base"), tmp_path / "adapter")  # experts low-rank, as trained
    assert torch.equal(logits_of(reloaded), tuned)


def test_bad_targets_and_unconverted_models_are_errors():
    with pytest.raises(ValueError, match=r"^targets:"):
        lora_config_for(converted(), targets=("attention",))
    with pytest.raises(ValueError, match=r"^rank:"):
        lora_config_for(converted(), rank=0)
    with pytest.raises(ValueError, match="convert it first"):
        lora_config_for(tiny_model("mixtral"))
    with pytest.raises(ValueError, match="not supported"):
        lora_config_for(tiny_model("llama"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_4bit_without_cuda_stops_with_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match=r"^load_in_4bit: .*CUDA") as err:
        bnb_4bit_config()
    assert "\n" not in str(err.value)
    save(converted(), tmp_path)
    with pytest.raises(ValueError, match=r"^load_in_4bit:"):
        load(tmp_path, load_in_4bit=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="4-bit QLoRA needs CUDA (bitsandbytes)")
def test_qlora_4bit_trains(tmp_path):  # pragma: no cover - needs a GPU
    pytest.importorskip("bitsandbytes", reason="4-bit QLoRA needs bitsandbytes")
    save(converted(), tmp_path)
    model = load(tmp_path, load_in_4bit=True, device_map={"": 0})
    peft_model = get_peft_model(model, lora_config_for(model, modules=("q_proj", "v_proj")))
    tokens = TOKENS.to(0)
    peft_model.train()
    peft_model(tokens, labels=tokens).loss.backward()
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in peft_model.parameters() if p.requires_grad
    )
