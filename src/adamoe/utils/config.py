"""One config idiom for the whole package: keyword-only dataclasses that build from a mapping and validate
themselves with one-line errors.

Why a base of our own (60 lines) and not pydantic/omegaconf: configs here are plain ``dataclass`` objects
that live beside the module they build; the YAML files and ``--set key=value`` overrides of the CLI only
need (1) unknown keys rejected with the list of valid ones, (2) field types checked, (3) bounds and
choices declared once on the field. :func:`option` declares (3); :class:`Config` does the rest.

    @dataclass(kw_only=True)
    class ExpertsConfig(Config):
        section = "experts"
        intermediate_size: int = option(1024, ge=1)
        backend: str = option("grouped", choices=BACKENDS)

Nested configs (a field whose type is a ``Config`` subclass) are built from nested mappings.
Cross-field rules go in ``check()``, which ``validate()`` calls after the per-field checks.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

C = TypeVar("C", bound="Config")
_BOUNDS = {
    "ge": (lambda v, b: v >= b, ">="),
    "gt": (lambda v, b: v > b, ">"),
    "le": (lambda v, b: v <= b, "<="),
}
_BOUNDS["lt"] = (lambda v, b: v < b, "<")


def option(
    default: Any = dataclasses.MISSING, *, choices: Sequence[Any] | None = None, **bounds: float
) -> Any:
    """A dataclass field with declared ``choices`` and/or bounds (``ge``, ``gt``, ``le``, ``lt``).

    A list/dict default is given as a factory automatically so instances never share it.
    """
    unknown = set(bounds) - set(_BOUNDS)
    if unknown:
        raise TypeError(f"option: unknown bound(s) {sorted(unknown)}; valid: {sorted(_BOUNDS)}")
    meta = {"choices": tuple(choices) if choices is not None else None, "bounds": bounds}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def require(ok: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``ok``: the one-line error every config check uses."""
    if not ok:
        raise ValueError(message)


def _matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp`` (int, float, str, bool, X | None, Literal, containers).

    Container annotations check their elements too (``list[str]``, ``tuple[int, ...]``, ``dict[str, X]``).
    """
    if tp is Any:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (tuple, list, Sequence):
        items = args[:1] if origin is not tuple or (len(args) == 2 and args[1] is Ellipsis) else ()
        return isinstance(value, (tuple, list)) and all(_matches(v, items[0]) for v in value if items)
    if origin in (dict, Mapping):
        key_tp, val_tp = args if len(args) == 2 else (Any, Any)
        return isinstance(value, Mapping) and all(
            _matches(k, key_tp) and _matches(v, val_tp) for k, v in value.items()
        )
    return isinstance(value, origin or tp) if isinstance(origin or tp, type) else True


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is None and hasattr(tp, "__name__"):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any) -> Any:
    """A YAML string that is a number where the field wants a float (PyYAML reads ``1e-4`` as a string);
    in a list of numbers, each such string (``--set model_batches=1,4`` arrives as ``["1", "4"]``)."""
    args = typing.get_args(tp)
    if isinstance(value, list) and typing.get_origin(tp) is list and args and args[0] in (int, float):
        return [_number(v, args[0]) for v in value]
    if isinstance(value, str) and not _matches(value, tp) and _matches(1.5, tp):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _number(value: Any, tp: type) -> Any:
    """``"4"`` -> 4 for an int element, ``"1e-4"`` -> 1e-4 for a float one; anything else unchanged (the
    type check then names the field)."""
    if not isinstance(value, str):
        return value
    try:
        return tp(value) if tp is float else int(value)
    except ValueError:
        return value


def _config_type(tp: Any) -> type[Config] | None:
    """The ``Config`` class of a nested-config annotation (``RouterConfig`` or ``RouterConfig | None``)."""
    candidates = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    for cand in candidates:
        if isinstance(cand, type) and issubclass(cand, Config):
            return cand
    return None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class Config:
    """Mixin for ``@dataclass(kw_only=True)`` configs: ``from_mapping``, ``validate``, ``to_dict``.

    ``section`` prefixes field names in errors (``router.top_k: ...``) so a user finds the YAML key. A
    nested config is named by its place instead (``train.lr`` for the ``train`` field of a verb config).
    """

    section: ClassVar[str] = ""

    def _name(self, field: str) -> str:
        """The user-facing name of ``field``: ``<section or place>.<field>``."""
        return _join(self.__dict__.get("_where", self.section), field)

    @classmethod
    def from_mapping(cls: type[C], data: Mapping[str, Any] | None, *, where: str | None = None) -> C:
        """Build and validate from a (YAML/JSON) mapping; unknown keys are one error listing the valid ones.

        ``where`` is the mapping's place, prefixing every error and nested field name (default: ``section``;
        errors about the whole mapping then fall back to the class name). ``where=""``: a top-level mapping
        whose keys are named bare (a CLI verb's config, where the prompt already names the verb).
        """
        prefix = cls.section if where is None else where
        label = (cls.section or cls.__name__) if where is None else where
        head = f"{label}: " if label else ""
        require(data is None or isinstance(data, Mapping), f"{head}expected a mapping, got {data!r}")
        data = dict(data or {})
        hints = typing.get_type_hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
        valid = [f.name for f in fields]
        unknown = sorted(set(data) - set(valid), key=str)
        require(
            not unknown,
            f"{head}unknown key(s) {', '.join(map(str, unknown))}; valid keys: {', '.join(valid)}",
        )
        missing = [f.name for f in fields if f.name not in data and _required(f)]
        require(not missing, f"{head}missing key(s) {', '.join(missing)}")
        for name in data:
            sub = _config_type(hints[name])
            if sub is not None and isinstance(data[name], Mapping):
                data[name] = sub.from_mapping(data[name], where=_join(prefix, name))
            else:
                data[name] = _coerce(data[name], hints[name])
        config = cls(**data)
        object.__setattr__(config, "_where", prefix)
        return config.validate()

    @classmethod
    def keys(cls) -> list[str]:
        """The valid keys of a mapping for this config; a nested section is shown as ``name.*``."""
        hints = typing.get_type_hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
        return [f.name + (".*" if _config_type(hints[f.name]) else "") for f in fields]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | None) -> C:
        """Alias of :meth:`from_mapping`."""
        return cls.from_mapping(data)

    def validate(self: C) -> C:
        """Check every field's type, choices and bounds, then the cross-field rules of ``check()``."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value, name = getattr(self, f.name), self._name(f.name)
            if isinstance(value, Config):
                object.__setattr__(value, "_where", name)
                value.validate()
                continue
            require(
                _matches(value, hints[f.name]), f"{name}: expected {_type_name(hints[f.name])}, got {value!r}"
            )
            if value is None:
                continue
            choices = f.metadata.get("choices")
            require(choices is None or value in choices, f"{name}: expected one of {choices}, got {value!r}")
            for bound, limit in (f.metadata.get("bounds") or {}).items():
                test, symbol = _BOUNDS[bound]
                numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
                require(
                    not numeric or test(value, limit), f"{name}: expected {symbol} {limit}, got {value!r}"
                )
        self.check()
        return self

    def check(self) -> None:
        """Cross-field rules; override and call :func:`require` with messages naming ``self._name(field)``."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of the fields (YAML/JSON-ready); ``from_mapping(to_dict())`` round-trips."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
