"""PEFT interop for converted models: the paper's Mixtral recipe (LoRA on gate, gate2 and the experts).

Routers and fused experts hold plain ``nn.Parameter``s (the router's ``weight`` (E, H) and ``gate2``
(m, H); the experts' 3D ``gate_up_proj`` / ``down_proj``), so LoRA reaches them through peft's
``target_parameters`` (``lora.ParamWrapper``), which re-parametrises the tensor for the duration of the
wrapped module's forward. Our router and the "adamoe" experts implementation read those attributes at
call time, so the adapted weights are what routing and the fused kernel see. ParamWrapper does not
support LoRA dropout, hence ``lora_dropout=0``.

The fused experts get :class:`adamoe.hf.lora_experts.ParamWrapper`, a ``ParamWrapper`` registered
for each experts class through PEFT's custom-module mapping: same parameters and save format, but its
forward adds the update as rank-r grouped GEMMs instead of merging ``W + ΔW`` (which the grouped GEMM
would keep for backward: a copy of the experts per layer, issue 19). The mapping is not part of the saved
``adapter_config.json``, so reload adapters with :func:`load_adapter` (plain
``PeftModel.from_pretrained`` still works, merging on every forward, with one warning while training).

4-bit QLoRA (the paper's setting) needs bitsandbytes on CUDA: :func:`bnb_4bit_config` builds the
quantisation config for :func:`adamoe.hf.io.load` (``load_in_4bit=True``) and stops with a one-line
error elsewhere. bitsandbytes quantises ``nn.Linear`` layers (attention, shared experts, lm head); the
fused 3D experts and the routers stay in the compute dtype.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from os import PathLike

import torch
from peft import LoraConfig, PeftConfig, PeftModel
from torch import nn

from adamoe.hf import lora_experts
from adamoe.hf.convert import AdaMoERouter
from adamoe.hf.experts_impl import NUM_NULL_ATTR
from adamoe.hf.families import FAMILY_SPECS, family_of

__all__ = [
    "LORA_TARGETS",
    "bnb_4bit_config",
    "load_adapter",
    "lora_config_for",
    "lora_target_parameters",
    "register_fused_experts_lora",
]

LORA_TARGETS = ("router", "experts")
_LAYER_PREFIX = re.compile(r"^(?:.*\.)?\d+\.")


def _suffix(name: str) -> str:
    """``model.layers.3.mlp.gate`` -> ``mlp.gate``: a name peft matches in every layer by suffix."""
    return _LAYER_PREFIX.sub("", name)


def lora_target_parameters(model: nn.Module, targets: Iterable[str] = LORA_TARGETS) -> list[str]:
    """Parameter names (layer-independent suffixes) for peft's ``target_parameters``."""
    targets = tuple(targets)
    bad = [t for t in targets if t not in LORA_TARGETS]
    if bad or not targets:
        raise ValueError(f"targets: expected a non-empty subset of {LORA_TARGETS}, got {targets!r}")
    spec = family_of(model)
    names: set[str] = set()
    for name, module in model.named_modules():
        if not isinstance(module, AdaMoERouter):
            continue
        router = _suffix(name.replace(".base_layer", ""))
        block = router.rpartition(".")[0]
        if "router" in targets:
            names.add(f"{router}.weight")
            if module.gate2 is not None:
                names.add(f"{router}.gate2")
        if "experts" in targets:
            names.update(
                {f"{block}.{spec.experts_attr}.gate_up_proj", f"{block}.{spec.experts_attr}.down_proj"}
            )
    if not names:
        raise ValueError(
            f"model: no AdaMoE routers found; convert it first (supported: {', '.join(FAMILY_SPECS)})"
        )
    return sorted(names)


def lora_config_for(
    model: nn.Module,
    *,
    rank: int = 8,
    alpha: int = 16,
    targets: Iterable[str] = LORA_TARGETS,
    modules: Iterable[str] = (),
    low_rank_experts: bool = True,
) -> LoraConfig:
    """LoraConfig targeting the routers (``gate`` weight + ``gate2``) and/or the fused experts.

    ``modules`` optionally adds ordinary ``nn.Linear`` targets (e.g. attention ``q_proj``).
    ``low_rank_experts=False`` leaves the experts to PEFT's merging ``ParamWrapper`` (the memory it costs
    is what :mod:`adamoe.bench.saved` measures against); the default computes them low-rank.
    """
    if rank < 1:
        raise ValueError(f"rank: expected an int >= 1, got {rank!r}")
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        target_modules=list(modules),
        target_parameters=lora_target_parameters(model, targets),
    )
    if low_rank_experts:
        register_fused_experts_lora(config, model)
    return config


def register_fused_experts_lora(config: LoraConfig, model: nn.Module) -> LoraConfig:
    """Map every fused experts class of the converted ``model`` to :class:`adamoe.hf.lora_experts.ParamWrapper` in ``config``
    (PEFT's custom-module mapping; not saved with the config). Returns ``config``."""
    experts_classes = {type(m) for m in model.modules() if hasattr(m, NUM_NULL_ATTR)}
    config._register_custom_module(dict.fromkeys(experts_classes, lora_experts.ParamWrapper))
    return config


def load_adapter(
    model: nn.Module, path: str | PathLike, *, is_trainable: bool = False, **kwargs: object
) -> PeftModel:
    """``PeftModel.from_pretrained`` for a converted model, with the fused experts computed low-rank.

    Reads ``adapter_config.json`` from ``path`` (same files as any PEFT save) and registers
    :class:`adamoe.hf.lora_experts.ParamWrapper` on it before PEFT builds the wrappers; ``kwargs`` go to ``from_pretrained``.
    """
    config = PeftConfig.from_pretrained(str(path))
    if isinstance(config, LoraConfig):
        register_fused_experts_lora(config, model)
    return PeftModel.from_pretrained(model, path, is_trainable=is_trainable, config=config, **kwargs)


def bnb_4bit_config(*, compute_dtype: torch.dtype = torch.bfloat16) -> object:
    """bitsandbytes NF4 double-quant config for QLoRA; one-line error without CUDA or bitsandbytes."""
    if not torch.cuda.is_available():
        raise ValueError("load_in_4bit: 4-bit QLoRA needs a CUDA GPU (bitsandbytes); none is available here")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ValueError(
            "load_in_4bit: bitsandbytes is not installed; run `pip install bitsandbytes`"
        ) from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )
