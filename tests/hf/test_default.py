"""The embedded SmolLM2 loader: one-line errors without the package, and a real offline load (slow)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

from adamoe.hf import default as default_mod
from adamoe.hf.default import (
    DEFAULT_GGUF_FILE,
    INSTALL_COMMAND,
    DefaultModelMissingError,
    clear_memory_cache,
    default_model_path,
    load_default,
)


def test_missing_package_gives_one_line_error_with_install_command(monkeypatch):
    monkeypatch.setattr(default_mod, "find_spec", lambda name: None)
    with pytest.raises(DefaultModelMissingError) as info:
        load_default()
    message = str(info.value)
    assert INSTALL_COMMAND in message
    assert "\n" not in message
    assert isinstance(info.value, ImportError)


def test_package_without_gguf_file_names_the_file(monkeypatch, tmp_path):
    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(default_mod, "find_spec", lambda name: spec)
    with pytest.raises(DefaultModelMissingError, match=DEFAULT_GGUF_FILE) as info:
        default_model_path()
    assert "\n" not in str(info.value)


def test_default_model_path_is_inside_the_package_folder(monkeypatch, tmp_path):
    (tmp_path / DEFAULT_GGUF_FILE).write_bytes(b"GGUF")
    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(default_mod, "find_spec", lambda name: spec)
    assert default_model_path() == tmp_path / DEFAULT_GGUF_FILE


def test_non_float_dtype_is_rejected_before_loading(monkeypatch):
    monkeypatch.setattr(default_mod, "find_spec", lambda name: pytest.fail("must not look for the model"))
    with pytest.raises(ValueError, match="dtype"):
        load_default(dtype=torch.int64)


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path) -> Path:
    """An empty on-disk cache and no in-process copy, restored afterwards."""
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path))
    clear_memory_cache()
    yield tmp_path
    clear_memory_cache()


@pytest.mark.slow
def test_real_smollm2_loads_predicts_and_caches(fresh_cache):
    model, tok = load_default()  # cold: dequantises the GGUF file and writes the safetensors cache
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not model.training

    folders = list((fresh_cache / "models").iterdir())
    assert len(folders) == 1 and not folders[0].name.startswith(".")  # no temp folder left behind
    assert (folders[0] / "model.safetensors").is_file()
    assert "quantization_config" not in (folders[0] / "config.json").read_text()

    enc = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], model.config.vocab_size)
    assert model.config.vocab_size == len(tok) == 49152
    # Sane dequantisation: the obvious continuation is the top prediction.
    assert tok.decode(logits[0, -1].argmax()).strip() == "Paris"

    chat = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    n = prompt["input_ids"].shape[1]
    first = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    second = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert torch.equal(first, second)
    assert "Paris" in tok.decode(first[0, n:])

    # Second load in a fresh process state comes from the safetensors cache with identical weights.
    clear_memory_cache()
    cached, cached_tok = load_default(dtype=torch.bfloat16)
    assert cached.dtype == torch.bfloat16
    assert cached_tok("The capital of France is")["input_ids"] == enc["input_ids"][0].tolist()
    reference = model.state_dict()
    for name, tensor in cached.state_dict().items():
        assert torch.equal(tensor, reference[name].to(torch.bfloat16)), name
