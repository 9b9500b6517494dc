"""Hand-made multiple-choice items shared by the evaluation tests (WinoGrande-style partial scoring, short
NLI prompts) and a routing comparison."""

from __future__ import annotations

from typing import Any

import pytest

from adamoe.data.examples import MCExample


def partial_mode_examples() -> list[MCExample]:
    """Two items whose choice is inserted into the context and a shared continuation is scored."""
    return [
        MCExample(
            id="w1",
            context="The kinsor is ",
            choices=["red", "a blue one"],
            continuation="and fast.",
            label=1,
            task="w",
        ),
        MCExample(
            id="w2",
            context="Tarvo ate ",
            choices=["seeds", "fish"],
            continuation="at noon.",
            label=0,
            task="w",
        ),
    ]


_CLAIMS = ("Ann sat.", "Bo ran home.", "Cy ate a plum.", "Di saw a kite.", "Ed fed a cat.", "Flo read.")


def short_nli(n: int) -> list[MCExample]:
    """NLI-style prompts short enough for the tiny models' 128-byte window (prefix mode, no truncation)."""
    return [
        MCExample(
            id=f"nli-{i}",
            context=f"{_CLAIMS[i % len(_CLAIMS)]} ({i})\nAnswer:",
            choices=["True", "False", "Neither"],
            label=i % 3,
            task="nli",
        )
        for i in range(n)
    ]


def assert_same_routing(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert list(got["layers"]) == list(want["layers"])
    for name, w in want["layers"].items():
        g = got["layers"][name]
        assert g["tokens"] == w["tokens"]
        assert g["expert_counts"] == w["expert_counts"]
        assert g["load"] == pytest.approx(w["load"], abs=1e-12)
        assert g["entropy"] == pytest.approx(w["entropy"], rel=1e-6)  # the reference sums in float32
        assert g["sharpness"] == pytest.approx(w["sharpness"], abs=1e-12)
    assert got["load"] == pytest.approx(want["load"], abs=1e-12)
