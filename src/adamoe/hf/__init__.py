"""Adapters for transformers models: null experts for MoE-LLMs, Mo-LoRA, upcycling, the default model.

Exports resolve lazily (PEP 562) so a missing optional module only fails when its export is used. The
one eager import is :mod:`adamoe.hf.auto` (torch and transformers' ``AutoConfig``, no modeling code): it
registers the ``adamoe_<family>`` model types of converted checkpoints with transformers' Auto classes,
so ``AutoModelForCausalLM.from_pretrained`` builds them converted once ``adamoe.hf`` is imported. It
lives here rather than in ``adamoe`` because the low layers must not pull transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "convert": "adamoe.hf.convert",
    "load": "adamoe.hf.io",
    "save": "adamoe.hf.io",
    "export_remote": "adamoe.hf.io",
    "lora_config_for": "adamoe.hf.peft_utils",
    "load_default": "adamoe.hf.default",
    "upcycle_to_mixtral": "adamoe.hf.upcycle",
    "inject_molora": "adamoe.hf.molora",
    "tiny_model": "adamoe.hf.tiny",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'adamoe.hf' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise ImportError(f"adamoe.hf.{name}: module {module_name} is not available in this build") from err
    value = getattr(module, name)
    # Importing the submodule bound it as a package attribute (``adamoe.hf.convert`` is both); the
    # function wins.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


from adamoe.hf import auto as _auto  # noqa: E402,F401  (registers the Auto classes, see above)
