"""LoRA for a run whose trainable set says LoRA (``lora`` / ``lora+router``) on a model that has none yet.

Without this, ``trainable=lora`` on a freshly loaded model has nothing to select, and the only sets that
run train whole weight matrices. The paper's MoE recipe puts LoRA on the router (``gate`` and the null
rows ``gate2``) and on the experts; on a converted model those are plain ``nn.Parameter``s, reached
through peft's ``target_parameters`` (:func:`adamoe.hf.peft_utils.lora_config_for`). A model without
AdaMoE routers (dense) gets ordinary LoRA on its attention and MLP projections. Mo-LoRA models already
carry ``lora_*`` parameters and are left alone.

After training, :func:`merge_lora` folds the updates into the base weights (exact: B·A added to W), so
the saved folder is a plain converted checkpoint that ``adamoe eval`` and ``adamoe analyze`` load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from adamoe.train.params import is_lora_param
from adamoe.utils.config import Config, option, require
from adamoe.utils.seeding import derive_seed

__all__ = ["LORA_SETS", "LoRASettings", "apply_lora", "merge_lora", "needs_lora"]

LORA_SETS = ("lora", "lora+router")


@dataclass(kw_only=True)
class LoRASettings(Config):
    """The LoRA a run injects: ``rank``/``alpha``; ``targets`` on converted MoE models (``router`` = gate
    and gate2, ``experts`` = the fused expert weights); ``modules`` = extra ``nn.Linear`` names (on a
    dense model, default: every attention and MLP projection)."""

    rank: int = option(8, ge=1)
    alpha: int = option(16, ge=1)
    targets: list[str] = field(default_factory=lambda: ["router", "experts"])
    modules: list[str] = field(default_factory=list)

    def check(self) -> None:
        from adamoe.hf.peft_utils import LORA_TARGETS

        bad = [t for t in self.targets if t not in LORA_TARGETS]
        require(
            not bad, f"{self._name('targets')}: expected a subset of {list(LORA_TARGETS)}, got {self.targets}"
        )


def needs_lora(model: nn.Module, trainable: str) -> bool:
    """Whether ``trainable`` asks for LoRA that ``model`` does not have yet."""
    return trainable in LORA_SETS and not any(is_lora_param(n) for n, _ in model.named_parameters())


def apply_lora(model: nn.Module, settings: LoRASettings, *, seed: int) -> nn.Module:
    """``model`` wrapped by peft with ``settings`` (LoRA A drawn from the seed's ``lora`` stream, B = 0,
    so the wrapped model starts equal to ``model``); only the LoRA weights require grad."""
    from peft import LoraConfig, get_peft_model

    from adamoe.hf.convert import AdaMoERouter

    if any(isinstance(m, AdaMoERouter) for m in model.modules()) and settings.targets:
        from adamoe.hf.peft_utils import lora_config_for

        config = lora_config_for(
            model,
            rank=settings.rank,
            alpha=settings.alpha,
            targets=tuple(settings.targets),
            modules=tuple(settings.modules),
        )
    else:
        from adamoe.hf.molora import DEFAULT_TARGETS  # every attention and MLP projection

        config = LoraConfig(
            r=settings.rank,
            lora_alpha=settings.alpha,
            lora_dropout=0.0,
            bias="none",
            task_type="CAUSAL_LM",
            target_modules=list(settings.modules or DEFAULT_TARGETS),
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "lora"))
        return get_peft_model(model, config)


def merge_lora(model: nn.Module) -> nn.Module:
    """The base model with the LoRA updates merged in (``model`` itself when it is not a peft wrapper)."""
    from peft import PeftModel

    return model.merge_and_unload() if isinstance(model, PeftModel) else model
