"""Save, load and export converted models: ``adamoe.hf.save`` / ``adamoe.hf.load`` / ``adamoe.hf.export_remote``.

A converted checkpoint is a transformers checkpoint (config.json + safetensors) whose config carries the
conversion settings under ``adamoe`` and, written by :func:`save`, the model type ``adamoe_<family>``
(:mod:`adamoe.hf.auto`): vanilla transformers refuses it instead of silently loading the unconverted
model, and ``AutoModelForCausalLM`` after ``import adamoe.hf`` builds it converted.

Loading rebuilds the base architecture, converts it with the recorded settings *before* the weights
arrive, and lets transformers read the safetensors into it: its per-family checkpoint conversions (the
fused-experts <-> per-expert layout it reverts to on save) then apply to the original keys and to
``gate2`` alike. Loading is strict: any missing, unexpected or mismatched key is an error, never a
silently re-initialised router. Older folders (model type ``mixtral`` etc. plus ``adamoe``, e.g. from a
plain ``save_pretrained``) still load here, and only here.

Both :func:`save` and :func:`export_remote` put the standalone modeling code of :mod:`adamoe.hf.remote`
beside the weights, with ``auto_map`` in config.json, so plain transformers (no adamoe, e.g. lm-eval's
``hf`` model) loads the folder with ``trust_remote_code=True``; transformers never runs that code unless
asked, and adamoe's own loading does not need it. A model the standalone code cannot rebuild (Mo-LoRA,
unmerged adapters, extra modules) is still saved, without ``auto_map``; then :data:`README` in the
folder and a warning say what plain transformers' "unknown model type" error means and what to do.
:func:`export_remote` is the strict variant: it refuses such a model, and a non-zero compute dial.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_model
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from adamoe.hf.auto import config_class, model_class
from adamoe.hf.convert import CONFIG_KEY, routers
from adamoe.hf.families import FAMILY_SPECS, family_of_type, model_type_for

__all__ = ["REMOTE_FAMILIES", "export_remote", "load", "save"]

#: Families whose routing the standalone code in :mod:`adamoe.hf.remote` reproduces.
REMOTE_FAMILIES = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3")
REMOTE_CODE = Path(__file__).resolve().parent / "remote"
#: The note every saved folder carries on how to load it (transformers' own refusal cannot say it).
README = "README.md"


def _retyped(config: Any) -> Any:
    """An older converted config (model type ``mixtral`` + ``adamoe``) as its ``adamoe_<family>`` config."""
    fields = config.to_dict()
    fields.pop("model_type", None)
    return config_class(config.model_type).from_dict(fields)


def _base_class(config: Any, path: Path) -> type[PreTrainedModel]:
    mapping = AutoModelForCausalLM._model_mapping
    try:
        return mapping[type(config)]
    except KeyError:
        raise ValueError(
            f"{path}: model type {config.model_type!r} has no causal-LM class in transformers"
        ) from None


def load(path: str | os.PathLike[str], *, load_in_4bit: bool = False, **kwargs: Any) -> PreTrainedModel:
    """Load a checkpoint saved with :func:`save`, :func:`export_remote` or ``save_pretrained``, in eval mode.

    A converted checkpoint (model type ``adamoe_<family>``, or ``adamoe`` in its config) is rebuilt
    converted; any other causal-LM checkpoint
    (dense, upcycled, unconverted MoE) loads as transformers builds it, under the same strict key check.
    ``kwargs`` go to ``from_pretrained`` (e.g. ``dtype``, ``device_map``). ``load_in_4bit`` quantises the
    linear layers with bitsandbytes for QLoRA (CUDA only; see :func:`adamoe.hf.peft_utils.bnb_4bit_config`).

    Inside a meta device context (``with torch.device("meta")``, as
    :func:`adamoe.train.accelerator.weights_on_main_only` opens on ranks > 0 of a cpu-RAM-efficient FSDP
    run) no weight is read: the model is built from config.json on the meta device, in the dtype
    ``from_pretrained`` would give it (``dtype`` if given, else the checkpoint's), converted as on load.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"path: {path} has no config.json (expected a directory written by adamoe.hf.save)")
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    record = getattr(config, CONFIG_KEY, None)
    if record is not None and not isinstance(record, dict):
        raise ValueError(
            f"{path}/config.json: '{CONFIG_KEY}' must be the recorded settings dict, got {record!r}"
        )
    if load_in_4bit:
        from adamoe.hf.peft_utils import bnb_4bit_config

        kwargs["quantization_config"] = bnb_4bit_config()
    if record is not None and config.model_type in FAMILY_SPECS:  # saved before adamoe_<family> existed
        config = _retyped(config)
    family = family_of_type(config.model_type)
    # adamoe_<family>: the registered class converts itself; anything else loads as transformers builds it.
    cls = model_class(family) if family is not None else _base_class(config, path)
    if torch.empty(()).is_meta:  # from_pretrained refuses a meta context (it would read every weight)
        return _on_meta(cls, config, path, dtype=kwargs.get("dtype"), load_in_4bit=load_in_4bit)
    # Mismatches are collected rather than raised by transformers so one strict check reports them all.
    kwargs.setdefault("ignore_mismatched_sizes", True)
    model, info = cls.from_pretrained(
        path,
        config=config,
        use_safetensors=True,
        local_files_only=True,
        output_loading_info=True,
        **kwargs,
    )
    problems = {k: sorted(info.get(k) or ()) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {k: v for k, v in problems.items() if v}
    if problems:
        detail = "; ".join(
            f"{k}: {', '.join(map(str, v[:5]))}{' ...' if len(v) > 5 else ''}" for k, v in problems.items()
        )
        raise ValueError(f"{path}: checkpoint does not match the model architecture ({detail})")
    return model.eval()


def _on_meta(
    cls: type[PreTrainedModel], config: Any, path: Path, *, dtype: Any, load_in_4bit: bool
) -> PreTrainedModel:
    """The model of ``config`` on the meta device (inside a meta context), in ``dtype`` (a torch dtype) or
    else the checkpoint's recorded dtype, as ``from_pretrained`` gives it; eval mode."""
    if load_in_4bit:
        raise ValueError(
            f"{path}: load_in_4bit cannot build on the meta device; load the weights on every rank"
        )
    if not isinstance(dtype, torch.dtype):
        dtype = getattr(config, "dtype", None) or torch.float32
    return cls._from_config(config, dtype=getattr(torch, dtype) if isinstance(dtype, str) else dtype).eval()


def _write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Let ``write`` fill a temporary sibling folder, then move each file into ``path`` (atomic per file)."""
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        write(Path(tmp))
        for item in Path(tmp).iterdir():
            os.replace(item, path / item.name)
    return path


def _record(model: PreTrainedModel) -> dict[str, Any]:
    record = getattr(model.config, CONFIG_KEY, None)
    if not isinstance(record, dict):
        raise ValueError("model: not converted (config.adamoe missing); call adamoe.hf.convert first")
    return record


def _edit_config(folder: Path, **fields: Any) -> None:
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    config.update(fields)
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save(
    model: PreTrainedModel, path: str | os.PathLike[str], *, tokenizer: Any = None, **kwargs: Any
) -> Path:
    """``save_pretrained`` (safetensors) into ``path`` under the model type ``adamoe_<family>``; each file
    is replaced atomically. ``tokenizer`` (optional) is saved beside the model; ``kwargs`` go to
    ``save_pretrained``. :func:`load` (or ``AutoModelForCausalLM`` after ``import adamoe.hf``) rebuilds the
    converted model; plain transformers needs ``trust_remote_code=True`` for the code and ``auto_map``
    written beside the weights (unless the model has weights that code does not build: see the module
    docstring), and refuses the folder without it."""
    family = _record(model)["family"]
    cls = model_class(family)
    differ = _remote_mismatch(model, family)
    if differ:
        warnings.warn(
            f"{path}: saved without the standalone code (weights {', '.join(differ[:3])} are not what it "
            "builds): only adamoe loads this folder; merge Mo-LoRA / PEFT adapters first for one that "
            "plain transformers loads with trust_remote_code=True",
            stacklevel=2,
        )

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, **kwargs)
        _edit_config(tmp, model_type=model_type_for(family), architectures=[cls.__name__])
        _add_loading_note(tmp, family, differ)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)

    return _write_atomically(Path(path), write)


def export_remote(model: PreTrainedModel, path: str | os.PathLike[str], *, tokenizer: Any = None) -> Path:
    """Write ``model`` so that plain transformers loads it with ``trust_remote_code=True`` (no adamoe).

    The folder holds the weights in the runtime layout (``model.safetensors``), a config.json with
    ``auto_map`` pointing at the standalone ``configuration_adamoe.py`` / ``modeling_adamoe.py`` copied
    from :mod:`adamoe.hf.remote`, and ``tokenizer`` if given. Without ``trust_remote_code`` transformers
    refuses the folder (unknown model type); :func:`load` reads it too. Every family of
    :data:`REMOTE_FAMILIES`, at compute dial 0, without Mo-LoRA or PEFT adapters (checked)."""
    record = _record(model)
    family = record["family"]
    if family not in REMOTE_FAMILIES:
        raise ValueError(
            f"model: export_remote supports {', '.join(REMOTE_FAMILIES)}, not {family}; "
            "use adamoe.hf.save (loads with adamoe installed)"
        )
    for name, router in routers(model):
        if router.null_bias:
            raise ValueError(
                f"model: {name}.null_bias is {router.null_bias}; set the compute dial to 0 first"
            )
    differ = _remote_mismatch(model, family)
    if differ:
        raise ValueError(
            f"model: weights {', '.join(differ[:3])} differ from what the exported code builds; "
            "merge Mo-LoRA / PEFT adapters into the model before export_remote"
        )

    def write(tmp: Path) -> None:
        model.config.save_pretrained(tmp)
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        architectures = [model_class(family).__name__]
        _edit_config(tmp, model_type=model_type_for(family), architectures=architectures, dtype=dtype)
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(tmp)
        _add_loading_note(tmp, family, [])
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)

    return _write_atomically(Path(path), write)


def _remote_mismatch(model: PreTrainedModel, family: str) -> list[str]:
    """State-dict keys in which ``model`` and the standalone class built from its config (on the meta
    device) differ: empty when the exported code loads the weights one to one (no Mo-LoRA, adapters or
    other extra modules)."""
    from adamoe.hf.remote import modeling_adamoe

    if family not in REMOTE_FAMILIES:
        return [f"<family {family}: no standalone code>"]
    with torch.device("meta"):
        remote = getattr(modeling_adamoe, model_class(family).__name__)(copy.deepcopy(model.config))
    return sorted(set(remote.state_dict()) ^ set(model.state_dict()))


def _add_loading_note(folder: Path, family: str, differ: list[str]) -> None:
    """The standalone code and ``auto_map`` when the code rebuilds the model (``differ`` empty), and the
    :data:`README` saying how the folder loads either way."""
    name = model_type_for(family)
    lines = [
        f"# AdaMoE checkpoint (model type {name}: {family} with null experts)",
        "",
        "With adamoe installed: `adamoe.hf.load(folder)`, or `import adamoe.hf` and then",
        "`transformers.AutoModelForCausalLM.from_pretrained(folder)`.",
        "",
    ]
    if differ:
        lines += [
            f"Plain transformers cannot load this folder: it reports the model type {name} as unknown",
            "(upgrading transformers does not help). The model has weights the standalone AdaMoE code does",
            f"not build ({', '.join(differ[:3])}), e.g. Mo-LoRA or unmerged PEFT adapters: merge them and",
            "save again with adamoe.hf.save to get a folder that loads with trust_remote_code=True.",
        ]
    else:
        names = _remote_names(family)
        _edit_config(folder, auto_map=names)
        for source in REMOTE_CODE.glob("*_adamoe.py"):
            shutil.copyfile(source, folder / source.name)
        lines += [
            "Without adamoe: `AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)` runs the",
            "standalone modeling code beside the weights (configuration_adamoe.py, modeling_adamoe.py; torch",
            "and transformers only). Without trust_remote_code transformers refuses the folder.",
        ]
    (folder / README).write_text("\n".join(lines) + "\n")


def _remote_names(family: str) -> dict[str, str]:
    """``auto_map`` of ``family``: adamoe/hf/remote names its classes as :mod:`adamoe.hf.auto` does."""
    return {
        "AutoConfig": f"configuration_adamoe.{config_class(family).__name__}",
        "AutoModelForCausalLM": f"modeling_adamoe.{model_class(family).__name__}",
    }
