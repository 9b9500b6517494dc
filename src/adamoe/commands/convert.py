"""Convert a model and save it (safetensors + tokenizer) into the run directory.

Modes: ``null`` adds AdaMoE null experts to an HF MoE model (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE,
DeepSeek); ``upcycle`` turns a dense Llama-family model into an E-expert Mixtral; ``molora`` injects a
router + LoRA experts (+ nulls) into a dense model and saves the base model with the adapters beside
it (``molora_config.json`` + ``molora_adapter.safetensors``), so ``--model <folder>`` loads it back.
Keys (``--set key=value``): see :class:`ConvertVerbConfig`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from adamoe.commands.common import save_model, verb_config
from adamoe.hf.models import DEFAULT_NULL, DEFAULT_TOP_K, UPCYCLE_EXPERTS, UPCYCLE_K, ModelSpec
from adamoe.routing.base import NULL_TYPES
from adamoe.runs import run_directory, save_run_config, seed_everything
from adamoe.utils.config import Config, option

MODES = ("null", "upcycle", "molora")
MOLORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(kw_only=True)
class ConvertVerbConfig(Config):
    """``adamoe convert``. ``null``: ``null_experts``/``top_k``/``null_type``/``normalize``/``gate2_init``;
    ``upcycle``: ``num_experts``/``upcycle_top_k``/``upcycle_mode``/``noise_std``; ``molora``:
    ``targets``/``num_experts``/``null_experts``/``top_k``/``rank``/``alpha``."""

    model: str = "smollm2-moe"
    mode: str = option("null", choices=MODES)
    null_experts: int = option(DEFAULT_NULL, ge=0)
    top_k: int = option(DEFAULT_TOP_K, ge=1)
    null_type: str = option("zero", choices=NULL_TYPES)
    normalize: int | None = option(None, choices=(0, 1, 2))
    gate2_init: str = "copy_jitter"
    num_experts: int = option(UPCYCLE_EXPERTS, ge=1)
    upcycle_mode: str = option("copy", choices=("copy", "split"))
    upcycle_top_k: int = option(UPCYCLE_K, ge=1)
    noise_std: float = option(0.0, ge=0.0)
    rank: int = option(8, ge=1)
    alpha: float = option(16.0, gt=0.0)
    targets: list[str] = field(default_factory=lambda: list(MOLORA_TARGETS))

    def check(self) -> None:
        ModelSpec.parse(self.model)
        if self.mode == "null":
            from adamoe.hf.convert import ConvertConfig

            ConvertConfig(**self._null_settings()).validate()

    def _null_settings(self) -> dict[str, Any]:
        keys = ("null_experts", "top_k", "null_type", "normalize", "gate2_init")
        return {key: getattr(self, key) for key in keys}


CONFIG = ConvertVerbConfig
"""The verb's typed config (listed in ``--help``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``adamoe convert`` flags."""
    parser.add_argument("--model", help="model spec or folder (default smollm2-moe)")
    parser.add_argument("--mode", choices=MODES)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the conversion (``adamoe convert``); returns its result record."""
    cfg = verb_config(ConvertVerbConfig, args, model=args.model, mode=args.mode)
    seed_everything(args.seed)
    with run_directory(args.runs_root, "convert", args.run_dir) as run_dir:
        save_run_config(run_dir, {**cfg.to_dict(), "seed": args.seed})
        model, tok, info = ModelSpec.parse(cfg.model).load(seed=args.seed, routed=False)
        out = run_dir / "model"
        if cfg.mode == "null":
            from adamoe.hf.convert import convert

            if info["kind"] == "dense":
                raise ValueError(f"model: {cfg.model!r} is dense; use --mode upcycle or --mode molora")
            convert(model, **cfg._null_settings(), seed=args.seed)
            save_model(model, tok, out)
        elif cfg.mode == "upcycle":
            from adamoe.hf.upcycle import upcycle_to_mixtral

            moe = upcycle_to_mixtral(
                model,
                num_experts=cfg.num_experts,
                top_k=cfg.upcycle_top_k,
                mode=cfg.upcycle_mode,
                noise_std=cfg.noise_std,
                seed=args.seed,
            )
            save_model(moe, tok, out)
        else:
            _molora(model, tok, cfg, seed=args.seed, out=out)
    print(f"saved to {out}")
    return {"output": str(out), "info": info}


def _molora(model: Any, tok: Any, cfg: ConvertVerbConfig, *, seed: int, out: Any) -> None:
    """Save the base model and tokenizer, then the injected adapters beside them: a folder that
    ``--model <folder>`` (``adamoe train`` / ``adamoe eval``) loads back as the Mo-LoRA model."""
    from adamoe.hf.molora import count_parameters, inject_molora, save_molora

    save_model(model, tok, out)
    inject_molora(
        model,
        targets=tuple(cfg.targets),
        num_experts=cfg.num_experts,
        num_null=cfg.null_experts,
        top_k=cfg.top_k,
        rank=cfg.rank,
        alpha=cfg.alpha,
        seed=seed,
    )
    count_parameters(model)
    save_molora(model, out)
