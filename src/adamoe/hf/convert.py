"""Give a transformers MoE-LLM null experts in place (AdaMoE): ``adamoe.hf.convert(model, null_experts=m)``.

Each MoE block's router (``block.gate``) is replaced by an :class:`AdaMoERouter` (:mod:`adamoe.hf.router`)
that keeps the original ``weight`` (E, H) parameter object, adds ``gate2`` (m, H) for the nulls, scores
E+m experts, picks the top k (k usually raised) and returns the family's own ``(logits, weights,
indices)`` tuple with nulls numbered ``E..E+m-1``. The block's forward, its experts module and any shared expert stay HF's; the
experts run through the registered "adamoe" experts implementation (:mod:`adamoe.hf.experts_impl`),
which drops null slots before the GEMMs. With m = 0 and the original k the converted model reproduces
the original logits exactly.

State-dict keys of the original model are unchanged; the new ones are ``<block>.gate.gate2`` (and, for
DeepSeek-V3, ``<block>.gate.null_score_correction_bias``). Settings are recorded in
``model.config.adamoe`` (serialised with config.json) so :func:`adamoe.hf.io.load` can rebuild the model.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adamoe.hf import experts_impl
from adamoe.hf.families import FAMILY_SPECS, FamilySpec, family_of, model_type_for, moe_blocks
from adamoe.hf.gate2 import GATE2_INITS, check_calibration
from adamoe.hf.router import AdaMoERouter
from adamoe.routing.base import NORMALIZE_MODES, NULL_TYPES
from adamoe.utils.config import Config, option
from adamoe.utils.seeding import derive_generator

__all__ = ["GATE2_INITS", "AdaMoERouter", "ConvertConfig", "convert", "is_converted", "routers"]

CONFIG_KEY = "adamoe"
FORMAT_VERSION = 1


@dataclass(kw_only=True)
class ConvertConfig(Config):
    """What :func:`convert` does. ``normalize``: 2 = over chosen true experts (AdaMoE option 2), 1 = over all
    chosen slots (option 1), 0 = raw scores (with nulls: rescaled to the original top-k mass, see
    :meth:`AdaMoERouter.combine`), None = the family's own rule (2 if it renormalises its top-k, else 0),
    which makes m = 0 exact for every family. ``seed`` drives the "random" and "copy_jitter" inits;
    "copy_jitter" is the default because plain "copy" ties every null's logit with its twin's for every
    token, leaving the initial routing to ``topk``'s tie-breaking (which CPU and CUDA may break apart)."""

    null_experts: int = option(ge=0)
    top_k: int | None = option(None, ge=1)
    null_type: str = option("zero", choices=NULL_TYPES)
    normalize: int | None = option(None, choices=NORMALIZE_MODES)
    gate2_init: str = option("copy_jitter", choices=GATE2_INITS)
    seed: int = 0


def is_converted(model: nn.Module) -> bool:
    """Whether ``model`` already has AdaMoE routers (or records the settings of a conversion)."""
    return getattr(getattr(model, "config", None), CONFIG_KEY, None) is not None or any(
        isinstance(m, AdaMoERouter) for m in model.modules()
    )


def routers(model: nn.Module) -> list[tuple[str, AdaMoERouter]]:
    """Every AdaMoE router of a converted model (also inside PEFT wrappers)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, AdaMoERouter)]


def apply_conversion(
    model: nn.Module, cfg: ConvertConfig, calibration: Mapping[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Swap the routers and select the experts implementation; returns the settings to record.

    Shared by :func:`convert` (fresh models) and :func:`adamoe.hf.io.load` (models rebuilt from a
    config that already records the settings, possibly on the meta device; gate2 then comes from the
    checkpoint, so no calibration).
    """
    cfg.validate()
    spec = family_of(model)
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    blocks = moe_blocks(model, spec)
    if not blocks:
        raise ValueError(f"model: no {spec.block_class} blocks found in this {spec.model_type} model")
    hidden = {name: getattr(block, spec.router_attr).weight.shape[1] for name, block in blocks}
    check_calibration(calibration, hidden, gate2_init=cfg.gate2_init, null_experts=cfg.null_experts)
    _, router_cls = spec.classes()
    num_experts, base_k = spec.num_experts(config), spec.top_k(config)
    top_k = base_k if cfg.top_k is None else cfg.top_k
    m = cfg.null_experts
    if top_k > num_experts + m:
        raise ValueError(f"top_k: {top_k} exceeds the {num_experts} true + {m} null experts")
    first = getattr(blocks[0][1], spec.router_attr)
    if not isinstance(first, router_cls):
        raise ValueError(
            f"model: {blocks[0][0]}.{spec.router_attr} is {type(first).__name__}, expected {spec.router_class}"
        )
    normalize = cfg.normalize if cfg.normalize is not None else (2 if spec.normalizes(first) else 0)
    new_routers = _build_routers(
        blocks, spec, cfg, top_k=top_k, base_top_k=base_k, normalize=normalize, calibration=calibration
    )
    _install(model, spec, blocks, new_routers, cfg)
    return {
        **cfg.to_dict(),
        **({"gate2_calibrated": True} if calibration is not None else {}),
        "top_k": top_k,
        "normalize": normalize,
        "family": spec.model_type,
        "num_experts": num_experts,
        "base_top_k": base_k,
        "version": FORMAT_VERSION,
    }


def _build_routers(
    blocks: list[tuple[str, nn.Module]],
    spec: FamilySpec,
    cfg: ConvertConfig,
    *,
    top_k: int,
    base_top_k: int,
    normalize: int,
    calibration: Mapping[str, torch.Tensor] | None,
) -> list[AdaMoERouter]:
    """One checked :class:`AdaMoERouter` per block, all built before the model is touched, so a refused
    conversion (top_k above what group-limited routing leaves eligible) leaves the model as it was."""
    # Its own stream: a generator seeded like the upcycler's would draw the upcycled router rows again,
    # making every null a scaled copy of its twin (issue 9).
    generator = derive_generator(cfg.seed, "convert.gate2")
    new_routers = []
    for name, block in blocks:
        router = AdaMoERouter(
            original=getattr(block, spec.router_attr),
            spec=spec,
            num_null=cfg.null_experts,
            top_k=top_k,
            null_type=cfg.null_type,
            normalize=normalize,
            gate2_init=cfg.gate2_init,
            base_top_k=base_top_k,
            generator=generator,
            input_mean=None if calibration is None else calibration[name],
        )
        if router.eligible_experts() < top_k:
            raise ValueError(
                f"top_k: {top_k} exceeds the {router.eligible_experts()} experts group-limited routing leaves "
                f"eligible in {name}"
            )
        new_routers.append(router)
    return new_routers


def _install(
    model: nn.Module, spec: FamilySpec, blocks: list, new_routers: list[AdaMoERouter], cfg: ConvertConfig
) -> None:
    """Swap in the checked routers, tell each experts module its nulls, select the adamoe experts impl."""
    for (_, block), router in zip(blocks, new_routers):
        setattr(block, spec.router_attr, router)
        experts = getattr(block, spec.experts_attr)
        setattr(experts, experts_impl.NUM_NULL_ATTR, cfg.null_experts)
        setattr(experts, experts_impl.NULL_TYPE_ATTR, cfg.null_type)
    model.set_experts_implementation(experts_impl.register())
    _guard_hf_router_logits(model)


def _refuse_hf_router_logits(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
    if kwargs.get("output_router_logits", getattr(module.config, "output_router_logits", False)):
        raise ValueError(
            "output_router_logits: transformers' router logits and aux loss know nothing of null experts; "
            "use adamoe.losses on adamoe.stats.collect_routings(model) instead"
        )


def _guard_hf_router_logits(model: nn.Module) -> None:
    """HF's recorder hooks its own router classes, so with our routers it would fail obscurely (or, were
    it to see E+m logits, index past E): switch it off and refuse it with a clear message."""
    if hasattr(model.config, "output_router_logits"):
        model.config.output_router_logits = False
    if not getattr(model, "_adamoe_router_logits_guard", False):
        model.register_forward_pre_hook(_refuse_hf_router_logits, with_kwargs=True)
        model._adamoe_router_logits_guard = True


def settings_from_record(record: dict[str, Any]) -> ConvertConfig:
    """The :class:`ConvertConfig` a recorded ``config.adamoe`` dict was made with."""
    fields = ("null_experts", "top_k", "null_type", "normalize", "gate2_init", "seed")
    missing = [f for f in fields if f not in record]
    if missing:
        raise ValueError(f"config.adamoe: missing field(s) {', '.join(missing)}")
    return ConvertConfig.from_mapping({f: record[f] for f in fields}, where="config.adamoe")


def convert(
    model: nn.Module,
    *,
    null_experts: int,
    top_k: int | None = None,
    null_type: str = "zero",
    normalize: int | None = None,
    gate2_init: str = "copy_jitter",
    seed: int = 0,
    calibration: Mapping[str, torch.Tensor] | None = None,
) -> nn.Module:
    """Add ``null_experts`` null experts to every MoE block of ``model`` in place and return it.

    ``top_k`` defaults to the model's own k. ``seed`` drives ``gate2_init="random"``/``"copy_jitter"``
    through a stream of its own (independent of an upcycler seeded alike). ``calibration`` ({block name:
    (H,) mean router input}, from :func:`adamoe.hf.gate2.router_input_means` on this model) makes the
    ``copy_jitter`` jitter orthogonal to each layer's mean input, so the initial load is k·E/(E+m) in
    every layer, not only on average (:mod:`adamoe.hf.gate2`); without it the jitter is plain. The
    settings (with ``normalize`` resolved) are recorded in ``model.config.adamoe``.
    """
    cfg = ConvertConfig(
        null_experts=null_experts,
        top_k=top_k,
        null_type=null_type,
        normalize=normalize,
        gate2_init=gate2_init,
        seed=seed,
    ).validate()
    family_of(model)
    if is_converted(model):
        raise ValueError("model: already converted (config.adamoe is set); convert a fresh model instead")
    record = apply_conversion(model, cfg, calibration)
    setattr(model.config, CONFIG_KEY, record)
    # The adamoe_<family> classes: a plain save_pretrained then writes a model type that vanilla
    # transformers refuses instead of silently loading the unconverted model.
    return adopt(model)


def adopt(model: nn.Module) -> nn.Module:
    """Give a converted model the ``adamoe_<family>`` classes in place (a plain ``save_pretrained`` then
    writes that model type too); returns ``model``. The classes are those :mod:`adamoe.hf.auto` registered
    (on ``import adamoe.hf``, which importing this module implies), found in transformers' registry: auto
    builds on this module, so this module never imports it. Only the classes change (subclasses adding no
    state); a config's instance attribute ``model_type`` (read from config.json) is dropped."""
    from transformers import CONFIG_MAPPING

    record = getattr(getattr(model, "config", None), CONFIG_KEY, None)
    if not isinstance(record, dict) or record.get("family") not in FAMILY_SPECS:
        raise ValueError("model: not converted (config.adamoe missing); call adamoe.hf.convert first")
    cfg_cls = CONFIG_MAPPING[model_type_for(record["family"])]
    cls = cfg_cls.registered_model_class()
    if type(model) not in (cls, cls.__mro__[1]) or type(model.config) not in (cfg_cls, cfg_cls.__mro__[1]):
        raise ValueError(
            f"model: expected a {cls.__mro__[1].__name__} with its own config, got {type(model).__name__}"
        )
    model.config.__class__ = cfg_cls
    model.config.__dict__.pop("model_type", None)
    model.__class__ = cls
    return model


class _CallableModule(types.ModuleType):
    """``adamoe.hf.convert`` names both this module and the function; importing the module (which Python
    then binds as the package attribute) must not break ``adamoe.hf.convert(model, ...)``."""

    def __call__(self, *args: Any, **kwargs: Any) -> nn.Module:
        return convert(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
