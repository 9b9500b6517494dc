"""The config base: every error path is one exact line naming the field, nested configs build and round-trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from adamoe.utils.config import Config, option, require


@dataclass(kw_only=True)
class Inner(Config):
    section = "inner"
    size: int = option(4, ge=1)
    rate: float = option(0.5, gt=0.0, lt=1.0)
    mode: str = option("a", choices=("a", "b"))


@dataclass(kw_only=True)
class Outer(Config):
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    maybe: Inner | None = None
    tags: list[str] = option(["t"])  # noqa: RUF009 -- option() turns a list default into a factory
    table: dict[str, int] = option({})  # noqa: RUF009 -- (tested below)
    pair: tuple[int, ...] = (1, 2)
    limit: int | None = option(None, ge=1, le=10)
    boundary: int | str = option("epoch", ge=0)
    flavour: Literal["sweet", "sour"] = "sweet"
    flag: bool = False

    def check(self) -> None:
        require(self.name != "bad" or self.flag, f"{self._name('name')}: 'bad' needs flag=true")


@dataclass(kw_only=True)
class Needs(Config):
    section = "needs"
    path: str
    n: int = 1


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_defaults_validate_and_round_trip_through_to_dict():
    cfg = Outer.from_mapping({"inner": {"size": 7}, "maybe": {"mode": "b"}, "tags": ["a", "b"]})
    assert cfg.inner == Inner(size=7) and cfg.maybe == Inner(mode="b")
    assert Outer.from_mapping(cfg.to_dict()) == cfg
    assert cfg.to_dict()["inner"] == {"size": 7, "rate": 0.5, "mode": "a"}
    assert Outer.from_mapping(None) == Outer()
    assert Outer.from_dict({"name": "y"}) == Outer(name="y")


def test_list_and_dict_defaults_are_not_shared():
    a, b = Outer(), Outer()
    a.tags.append("u")
    a.table["k"] = 1
    assert b.tags == ["t"] and b.table == {}


def test_unknown_keys_list_the_valid_ones():
    valid = "name, inner, maybe, tags, table, pair, limit, boundary, flavour, flag"
    assert _error(Outer.from_mapping, {"nme": 1, "colour": 2}) == (
        f"Outer: unknown key(s) colour, nme; valid keys: {valid}"
    )
    assert _error(Outer.from_mapping, {"inner": {"sise": 1}}) == (
        "inner: unknown key(s) sise; valid keys: size, rate, mode"
    )
    assert (
        _error(Outer.from_mapping, {"x": 1}, where="demo") == f"demo: unknown key(s) x; valid keys: {valid}"
    )


def test_a_section_that_is_not_a_mapping_and_missing_keys():
    assert _error(Inner.from_mapping, [1, 2]) == "inner: expected a mapping, got [1, 2]"
    assert _error(Needs.from_mapping, {"n": 2}) == "needs: missing key(s) path"
    assert Needs.from_mapping({"path": "p"}) == Needs(path="p")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": 3}, "name: expected str, got 3"),
        ({"flag": 1}, "flag: expected bool, got 1"),
        ({"limit": True}, "limit: expected int | None, got True"),
        ({"limit": 2.5}, "limit: expected int | None, got 2.5"),
        ({"tags": "a"}, "tags: expected list[str], got 'a'"),
        ({"tags": ["a", 1]}, "tags: expected list[str], got ['a', 1]"),
        ({"table": {"k": "v"}}, "table: expected dict[str, int], got {'k': 'v'}"),
        ({"pair": [1, "2"]}, "pair: expected tuple[int, ...], got [1, '2']"),
        ({"flavour": "salty"}, "flavour: expected Literal['sweet', 'sour'], got 'salty'"),
        ({"limit": 0}, "limit: expected >= 1, got 0"),
        ({"limit": 11}, "limit: expected <= 10, got 11"),
        ({"boundary": -1}, "boundary: expected >= 0, got -1"),
        ({"inner": {"size": 0}}, "inner.size: expected >= 1, got 0"),
        ({"inner": {"rate": 0.0}}, "inner.rate: expected > 0.0, got 0.0"),
        ({"inner": {"rate": 1}}, "inner.rate: expected < 1.0, got 1"),
        ({"inner": {"mode": "c"}}, "inner.mode: expected one of ('a', 'b'), got 'c'"),
        ({"inner": {"size": "4"}}, "inner.size: expected int, got '4'"),
        ({"maybe": {"size": -2}}, "maybe.size: expected >= 1, got -2"),
        ({"inner": 3}, "inner: expected Inner, got 3"),
        ({"name": "bad"}, "name: 'bad' needs flag=true"),
    ],
)
def test_every_field_error_is_the_exact_line(data, message):
    assert _error(Outer.from_mapping, data) == message


def test_validate_checks_objects_built_directly_and_names_nested_fields_by_place():
    assert _error(Outer(inner=Inner(mode="z")).validate) == "inner.mode: expected one of ('a', 'b'), got 'z'"
    assert _error(Outer(maybe=Inner(size=0)).validate) == "maybe.size: expected >= 1, got 0"
    assert _error(Inner(size=0).validate) == "inner.size: expected >= 1, got 0"  # standalone: the section
    assert Outer(limit=None, boundary="epoch").validate().boundary == "epoch"  # bounds skip None and strings


def test_yaml_number_strings_become_floats_only_where_a_float_is_wanted():
    assert Inner.from_mapping({"rate": "1e-1"}).rate == pytest.approx(0.1)  # PyYAML reads 1e-1 as a string
    assert _error(Inner.from_mapping, {"rate": "fast"}) == "inner.rate: expected float, got 'fast'"
    assert Outer.from_mapping({"name": "1e-1"}).name == "1e-1"


@dataclass(kw_only=True)
class Lists(Config):
    counts: list[int] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def test_number_strings_in_lists_of_numbers_are_converted_and_nothing_else():
    # `--set counts=1,4` arrives as ["1", "4"] (the comma split of a verb's list keys)
    got = Lists.from_mapping({"counts": ["1", "4"], "rates": ["1e-4", 2], "names": ["1", "x"]})
    assert (got.counts, got.rates, got.names) == ([1, 4], [1e-4, 2], ["1", "x"])
    assert _error(Lists.from_mapping, {"counts": ["1.5"]}) == "counts: expected list[int], got ['1.5']"


def test_option_rejects_unknown_bounds_and_require_passes_or_raises():
    with pytest.raises(
        TypeError, match=r"option: unknown bound\(s\) \['min'\]; valid: \['ge', 'gt', 'le', 'lt'\]"
    ):
        option(1, min=0)
    require(True, "never")
    assert _error(require, False, "field: expected x") == "field: expected x"


def test_where_names_the_mapping_and_an_empty_where_names_keys_bare():
    assert _error(Outer.from_mapping, {"limit": 0}, where="run") == "run.limit: expected >= 1, got 0"
    assert _error(Outer.from_mapping, {"inner": {"size": 0}}, where="") == "inner.size: expected >= 1, got 0"
    assert _error(Outer.from_mapping, {"x": 1}, where="").startswith("unknown key(s) x; valid keys: name, ")
    assert (
        _error(Inner.from_mapping, {"size": 0}, where="router.inner")
        == "router.inner.size: expected >= 1, got 0"
    )


def test_keys_lists_the_mapping_keys_with_nested_sections_marked():
    assert Outer.keys() == [
        "name",
        "inner.*",
        "maybe.*",
        "tags",
        "table",
        "pair",
        "limit",
        "boundary",
        "flavour",
        "flag",
    ]
