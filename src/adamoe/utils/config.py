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
_BOUNDS = {"ge": (lambda v, b: v >= b, ">="), "gt": (lambda v, b: v > b, ">"), "le": (lambda v, b: v <= b, "<=")}
_BOUNDS["lt"] = (lambda v, b: v < b, "<")


def option(default: Any = dataclasses.MISSING, *, choices: Sequence[Any] | None = None, **bounds: float) -> Any:
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
    """Whether ``value`` fits the annotation ``tp`` (int, float, str, bool, X | None, Literal, containers)."""
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(tp))
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (tuple, list, Sequence):
        return isinstance(value, (tuple, list))
    if origin in (dict, Mapping):
        return isinstance(value, Mapping)
    return isinstance(value, origin or tp) if isinstance(origin or tp, type) else True


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


class Config:
    """Mixin for ``@dataclass(kw_only=True)`` configs: ``from_mapping``, ``validate``, ``to_dict``.

    ``section`` prefixes field names in errors (``router.top_k: ...``) so a user finds the YAML key.
    """

    section: ClassVar[str] = ""

    def _name(self, field: str) -> str:
        return f"{self.section}.{field}" if self.section else field

    @classmethod
    def from_mapping(cls: type[C], data: Mapping[str, Any] | None) -> C:
        """Build and validate from a (YAML/JSON) mapping; unknown keys are one error listing the valid ones."""
        data = dict(data or {})
        hints = typing.get_type_hints(cls)
        valid = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(valid))
        where = cls.section or cls.__name__
        require(not unknown, f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
        for name in valid:
            tp = hints[name]
            if isinstance(tp, type) and issubclass(tp, Config) and isinstance(data.get(name), Mapping):
                data[name] = tp.from_mapping(data[name])
        return cls(**data).validate()

    def validate(self: C) -> C:
        """Check every field's type, choices and bounds, then the cross-field rules of ``check()``."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value, name = getattr(self, f.name), self._name(f.name)
            if isinstance(value, Config):
                value.validate()
                continue
            require(_matches(value, hints[f.name]), f"{name}: expected {_type_name(hints[f.name])}, got {value!r}")
            choices = f.metadata.get("choices")
            require(choices is None or value in choices, f"{name}: expected one of {choices}, got {value!r}")
            for bound, limit in (f.metadata.get("bounds") or {}).items():
                test, symbol = _BOUNDS[bound]
                require(value is None or test(value, limit), f"{name}: expected {symbol} {limit}, got {value!r}")
        self.check()
        return self

    def check(self) -> None:
        """Cross-field rules; override and call :func:`require`."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]
