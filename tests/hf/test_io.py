"""Save/load round trips of converted models: identical logits, recorded settings, strict key checks."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from adamoe.hf.convert import AdaMoERouter, convert
from adamoe.hf.io import load, save
from adamoe.hf.tiny import MOE_FAMILIES, tiny_model

TOKENS = torch.tensor([[5, 17, 99, 3, 64, 23, 8, 41], [1, 2, 3, 4, 5, 6, 7, 8]])


def logits_of(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(TOKENS).logits


def converted(family: str = "mixtral", **kwargs) -> torch.nn.Module:
    settings = {"null_experts": 3, "top_k": 3, "gate2_init": "random", "seed": 1, **kwargs}
    return convert(tiny_model(family), **settings)


@pytest.mark.parametrize("family", MOE_FAMILIES)
def test_round_trip_gives_identical_logits_and_settings(family, tmp_path):
    model = converted(family, null_type="identity", normalize=1)
    save(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["adamoe"] == model.config.adamoe
    assert (tmp_path / "model.safetensors").is_file()

    loaded = load(tmp_path)
    assert not loaded.training
    assert loaded.config.adamoe == model.config.adamoe
    assert loaded.config._experts_implementation == "adamoe"
    assert sum(isinstance(m, AdaMoERouter) for m in loaded.modules()) == 2
    assert torch.equal(logits_of(loaded), logits_of(model))
    # The routers really carry the trained/initialised gate2, not a fresh init.
    assert torch.equal(loaded.model.layers[1].mlp.gate.gate2, model.model.layers[1].mlp.gate.gate2)


def test_plain_save_pretrained_loads_too(tmp_path):
    model = converted("qwen3_moe")
    model.save_pretrained(tmp_path)
    assert torch.equal(logits_of(load(tmp_path)), logits_of(model))


def test_dtype_survives_the_round_trip(tmp_path):
    model = converted("olmoe").to(torch.bfloat16)
    save(model, tmp_path)
    loaded = load(tmp_path)
    assert loaded.model.layers[0].mlp.gate.gate2.dtype == torch.bfloat16
    # Logits are not compared: transformers itself recomputes the rotary inv_freq buffer in fp32 on load.
    want, got = model.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    assert all(got[k].dtype == want[k].dtype and torch.equal(got[k], want[k]) for k in want)
    assert torch.isfinite(logits_of(loaded).float()).all()


def _edit_weights(path, edit) -> None:
    tensors = load_file(path / "model.safetensors")
    edit(tensors)
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})


def test_missing_gate2_is_an_error(tmp_path):
    save(converted("mixtral"), tmp_path)
    _edit_weights(tmp_path, lambda t: t.pop(next(k for k in t if k.endswith("gate.gate2"))))
    with pytest.raises(ValueError, match=r"missing_keys: .*gate2"):
        load(tmp_path)


def test_unexpected_key_is_an_error(tmp_path):
    save(converted("qwen2_moe"), tmp_path)
    _edit_weights(tmp_path, lambda t: t.__setitem__("model.layers.0.mlp.gate.gate3", torch.zeros(2, 32)))
    with pytest.raises(ValueError, match=r"unexpected_keys: .*gate3"):
        load(tmp_path)


def test_checkpoint_with_other_settings_is_an_error(tmp_path):
    """Weights saved with m = 3 under a config claiming m = 5: shapes disagree, loading refuses."""
    save(converted("mixtral"), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["adamoe"]["null_experts"] = 5
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="mismatched_keys"):
        load(tmp_path)


@pytest.mark.parametrize(("family", "overrides"), [("mixtral", {}), ("llama", {"tie_word_embeddings": True})])
def test_plain_checkpoints_load_unconverted(family, overrides, tmp_path):
    """Dense, upcycled or unconverted MoE checkpoints come back as transformers builds them."""
    model = tiny_model(family, **overrides)
    model.save_pretrained(tmp_path)
    loaded = load(tmp_path)
    assert getattr(loaded.config, "adamoe", None) is None
    assert not any(isinstance(m, AdaMoERouter) for m in loaded.modules())
    assert torch.equal(logits_of(loaded), logits_of(model))


def test_missing_directory_and_unconverted_save_are_errors(tmp_path):
    with pytest.raises(ValueError, match=r"^path: .*config.json"):
        load(tmp_path / "nothing")
    with pytest.raises(ValueError, match="not converted"):
        save(tiny_model("mixtral"), tmp_path / "out")


def test_save_overwrites_an_existing_checkpoint_without_leftovers(tmp_path):
    save(converted("mixtral", seed=1), tmp_path / "ckpt")
    second = converted("mixtral", seed=2)
    save(second, tmp_path / "ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert torch.equal(logits_of(load(tmp_path / "ckpt")), logits_of(second))


def test_save_writes_the_adamoe_model_type_and_the_tokenizer(tmp_path):
    from adamoe.hf.models import ModelSpec, byte_tokenizer

    tok = byte_tokenizer()
    model = convert(tiny_model("mixtral", vocab_size=len(tok)), null_experts=2, top_k=3)
    save(model, tmp_path, tokenizer=tok)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["model_type"], config["architectures"]) == ("adamoe_mixtral", ["AdaMoEMixtralForCausalLM"])
    loaded, loaded_tok, info = ModelSpec.parse(str(tmp_path)).load()
    assert info["kind"] == "adamoe" and loaded_tok.encode("ab") == tok.encode("ab")
    assert torch.equal(logits_of(loaded), logits_of(model))


def test_every_save_carries_the_standalone_code_and_auto_map(tmp_path):
    """Plain transformers' way in (trust_remote_code=True; tests/hf/test_auto.py runs it without adamoe)."""
    import importlib

    from transformers import AutoModelForCausalLM

    from adamoe.hf.io import README, REMOTE_CODE

    model = converted("mixtral")
    save(model, tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_adamoe.AdaMoEMixtralConfig",
        "AutoModelForCausalLM": "modeling_adamoe.AdaMoEMixtralForCausalLM",
    }
    for ref in auto_map.values():
        module, name = ref.split(".")
        assert (tmp_path / f"{module}.py").read_bytes() == (REMOTE_CODE / f"{module}.py").read_bytes()
        assert hasattr(importlib.import_module(f"adamoe.hf.remote.{module}"), name)
    assert "trust_remote_code=True" in (tmp_path / README).read_text()
    want = logits_of(model)  # adamoe's own loading does not need the code
    assert torch.equal(logits_of(load(tmp_path)), want)
    assert torch.equal(logits_of(AutoModelForCausalLM.from_pretrained(tmp_path).eval()), want)


def test_a_model_the_standalone_code_cannot_build_is_saved_with_what_to_do(tmp_path):
    from adamoe.hf.io import README

    model = converted("olmoe")
    model.model.layers[1].mlp.extra = torch.nn.Linear(2, 2)
    with pytest.warns(UserWarning, match=r"weights model\.layers\.1\.mlp\.extra\.bias, .*merge Mo-LoRA"):
        save(model, tmp_path)
    assert "auto_map" not in json.loads((tmp_path / "config.json").read_text())
    assert not list(tmp_path.glob("*.py"))
    note = (tmp_path / README).read_text()
    assert "model type adamoe_olmoe as unknown" in note and "merge them" in note
