"""Model types of their own for converted checkpoints, registered with transformers' Auto classes.

A converted checkpoint whose config.json said ``mixtral`` loaded in any HF tool as a plain top-2
Mixtral without ``gate2``: silently a different model. Saved by :func:`adamoe.hf.io.save`, it says
``adamoe_mixtral`` instead (``adamoe_<family>`` for every family of :mod:`adamoe.hf.families`), so:

- vanilla transformers refuses it (unknown model type) instead of loading the wrong model;
- after ``import adamoe.hf`` (which imports this module), ``AutoConfig`` / ``AutoModelForCausalLM``
  build it converted: the model class is the family's HF causal LM whose constructor applies the
  recorded ``config.adamoe`` settings with :func:`adamoe.hf.convert.apply_conversion`, before the
  weights arrive (so ``gate2`` loads like any other weight).

Registration happens when ``adamoe.hf`` is imported, not ``adamoe``: the low layers must not pull
transformers (tests/test_layers.py). The configs register at once (cheap); each family's model class
is built and registered when a config of that family is first instantiated, which ``AutoModel*``
always does before looking the class up, so only the modeling module of a family in use is imported.

Each model type shares its family's checkpoint conversions (transformers looks them up by model type),
so the fused-experts <-> per-expert layout that ``save_pretrained`` writes loads back.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from transformers import AutoConfig, PreTrainedConfig

from adamoe.hf.families import FAMILY_SPECS

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = [
    "PREFIX",
    "adopt",
    "config_class",
    "family_of_type",
    "model_class",
    "model_type_for",
    "register",
    "register_model",
]

PREFIX = "adamoe_"
_MISSING = object()


def model_type_for(family: str) -> str:
    """``"mixtral"`` -> ``"adamoe_mixtral"``: the model type a converted checkpoint of ``family`` carries."""
    if family not in FAMILY_SPECS:
        raise ValueError(f"family: expected one of {', '.join(FAMILY_SPECS)}, got {family!r}")
    return PREFIX + family


def family_of_type(model_type: str) -> str | None:
    """``"adamoe_mixtral"`` -> ``"mixtral"``; None for any other model type."""
    family = model_type.removeprefix(PREFIX) if model_type.startswith(PREFIX) else None
    return family if family in FAMILY_SPECS else None


def _hf_config_class(family: str) -> type[PreTrainedConfig]:
    module = importlib.import_module(f"transformers.models.{family}.configuration_{family}")
    return next(
        cls
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, PreTrainedConfig) and cls.model_type == family
    )


@cache
def config_class(family: str) -> type[PreTrainedConfig]:
    """The family's HF config class with model type ``adamoe_<family>`` (no new fields: the settings ride
    in ``config.adamoe`` as before). Instantiating it registers the family's model class."""
    base = _hf_config_class(family)

    def __post_init__(self: PreTrainedConfig, **kwargs: Any) -> None:
        base.__post_init__(self, **kwargs)
        register_model(family)

    return type(
        f"AdaMoE{base.__name__}",
        (base,),
        {"model_type": model_type_for(family), "__post_init__": __post_init__, "__module__": __name__},
    )


@contextlib.contextmanager
def _as_family(config: PreTrainedConfig, family: str) -> Iterator[None]:
    """Show ``config`` as the plain family while converting: :func:`adamoe.hf.families.family_of` keys on
    ``model_type`` (a config read from config.json also holds it as an instance attribute). A stopgap
    until ``family_of`` maps ``adamoe_<family>`` itself; harmless after."""
    saved = config.__dict__.get("model_type", _MISSING)
    config.__dict__["model_type"] = family
    try:
        yield
    finally:
        if saved is _MISSING:
            del config.__dict__["model_type"]
        else:
            config.__dict__["model_type"] = saved


@cache
def model_class(family: str) -> type[PreTrainedModel]:
    """The family's HF causal LM whose constructor converts it with the settings in ``config.adamoe``."""
    # Imported here: the modeling side (and our router) is needed only once a model is built.
    from transformers import AutoModelForCausalLM

    from adamoe.hf.convert import CONFIG_KEY, apply_conversion, settings_from_record

    cfg_cls = config_class(family)
    base = AutoModelForCausalLM._model_mapping[cfg_cls.__mro__[1]]

    def __init__(self: PreTrainedModel, config: PreTrainedConfig, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, config, *args, **kwargs)
        record = getattr(config, CONFIG_KEY, None)
        if not isinstance(record, dict):
            raise ValueError(
                f"config.{CONFIG_KEY}: a {model_type_for(family)} config must carry the recorded conversion "
                f"settings, got {record!r}"
            )
        with _as_family(self.config, family):
            apply_conversion(self, settings_from_record(record))

    return type(
        f"AdaMoE{base.__name__}",
        (base,),
        {
            "__init__": __init__,
            "__module__": __name__,
            "config_class": cfg_cls,
            # transformers decides from the defining module's source whether the experts / attention
            # implementation may be switched; this module is not that source, the base's module is.
            "_can_set_experts_implementation_cached_value": True,
            "_can_set_attn_implementation_cached_value": base._can_set_attn_implementation(),
            # vLLM / SGLang would swap in their fused-MoE kernels, blind to null experts: refuse there.
            "_supports_attention_backend": False,
        },
    )


@cache
def register_model(family: str) -> type[PreTrainedModel]:
    """Register the family's converted model class with ``AutoModelForCausalLM`` and give its model type
    the family's checkpoint conversions (idempotent)."""
    from transformers import AutoModelForCausalLM
    from transformers.conversion_mapping import (
        get_checkpoint_conversion_mapping,
        register_checkpoint_conversion_mapping,
    )

    model_type = model_type_for(family)
    conversions = get_checkpoint_conversion_mapping(family)
    if conversions is not None and get_checkpoint_conversion_mapping(model_type) is None:
        register_checkpoint_conversion_mapping(model_type, conversions)
    cls = model_class(family)
    AutoModelForCausalLM.register(config_class(family), cls, exist_ok=True)
    return cls


def adopt(model: PreTrainedModel) -> PreTrainedModel:
    """Give a converted model (from :func:`adamoe.hf.convert`) the ``adamoe_<family>`` classes in place, so
    that a plain ``model.save_pretrained`` writes the distinct model type too; returns ``model``.

    Only the classes change (the registered ones are subclasses adding no state); a config read from a
    config.json also holds its ``model_type`` as an instance attribute, which is dropped so the class's
    one shows. Afterwards ``model.config.model_type`` is ``adamoe_<family>``.
    """
    record = getattr(getattr(model, "config", None), "adamoe", None)
    if not isinstance(record, dict) or record.get("family") not in FAMILY_SPECS:
        raise ValueError("model: not converted (config.adamoe missing); call adamoe.hf.convert first")
    family = record["family"]
    cls, cfg_cls = register_model(family), config_class(family)
    if type(model) not in (cls, cls.__mro__[1]) or type(model.config) not in (cfg_cls, cfg_cls.__mro__[1]):
        raise ValueError(
            f"model: expected a {cls.__mro__[1].__name__} with its own config, got {type(model).__name__}"
        )
    model.config.__class__ = cfg_cls
    model.config.__dict__.pop("model_type", None)
    model.__class__ = cls
    return model


def register() -> None:
    """Register every family's ``adamoe_<family>`` config with ``AutoConfig`` (idempotent); each model
    class follows when a config of its family is first built (see module docstring)."""
    for family in FAMILY_SPECS:
        AutoConfig.register(model_type_for(family), config_class(family), exist_ok=True)


register()
