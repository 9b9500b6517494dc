"""Model types of their own for converted checkpoints, registered with transformers' Auto classes.

A converted checkpoint whose config.json said ``mixtral`` loaded in any HF tool as a plain top-2
Mixtral without ``gate2``: silently a different model. Saved by :func:`adamoe.hf.io.save`, it says
``adamoe_mixtral`` instead (``adamoe_<family>`` for every family of :mod:`adamoe.hf.families`), so:

- vanilla transformers refuses it (unknown model type) instead of loading the wrong model;
- after ``import adamoe.hf`` (which imports this module), ``AutoConfig`` / ``AutoModelForCausalLM``
  build it converted: the model class is the family's HF causal LM whose constructor applies the
  recorded ``config.adamoe`` settings with :func:`adamoe.hf.convert.apply_conversion`, before the
  weights arrive (so ``gate2`` loads like any other weight).

Imports run one way, this module -> :mod:`adamoe.hf.convert`: a freshly converted model gets these
classes from :func:`adamoe.hf.convert.adopt`, which finds them by model type in transformers' registry.

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

from adamoe.hf.families import FAMILY_SPECS, model_type_for

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["config_class", "model_class", "register", "register_model"]

_MISSING = object()


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
    in ``config.adamoe`` as before). Instantiating it registers the family's model class, and so does
    its ``registered_model_class()``, which returns that class: how :func:`adamoe.hf.convert.adopt`
    finds it through transformers' registry without importing this module (which builds on convert)."""
    base = _hf_config_class(family)

    def __post_init__(self: PreTrainedConfig, **kwargs: Any) -> None:
        base.__post_init__(self, **kwargs)
        register_model(family)

    return type(
        f"AdaMoE{base.__name__}",
        (base,),
        {
            "model_type": model_type_for(family),
            "__post_init__": __post_init__,
            "__module__": __name__,
            "registered_model_class": classmethod(lambda cls: register_model(family)),
        },
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

    # The exported code does the same when transformers imports it (one implementation, shipped there).
    from adamoe.hf.remote.configuration_adamoe import share_checkpoint_conversions

    share_checkpoint_conversions(family)
    cls = model_class(family)
    AutoModelForCausalLM.register(config_class(family), cls, exist_ok=True)
    return cls


def register() -> None:
    """Register every family's ``adamoe_<family>`` config with ``AutoConfig`` (idempotent); each model
    class follows when a config of its family is first built (see module docstring)."""
    for family in FAMILY_SPECS:
        AutoConfig.register(model_type_for(family), config_class(family), exist_ok=True)


register()
