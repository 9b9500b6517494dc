"""Shared helpers of the bench tests: short NLI prompts, a routing comparison, a canned evaluator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from tokenizers import Tokenizer, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from adamoe.eval.scoring import MCRecord
from adamoe.rbench.records import MCExample

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


class FakeEvaluator:
    """Canned outputs: `answers[id]` for generation, `ll[id]` for scoring; records what it was asked."""

    is_moe = False

    def __init__(
        self, *, answers: dict[str, str] | None = None, ll: dict[str, list[float]] | None = None
    ) -> None:
        self.answers = answers or {}
        self.ll = ll or {}
        self.prompts: dict[str, str] = {}

    def uses_chat(self, chat: Any) -> bool:
        return False

    def generate(self, dimension: str, stage: str, prompts: Sequence[tuple[str, str]], **_: Any) -> list[str]:
        self.prompts.update(prompts)
        return [self.answers.get(i, "") for i, _ in prompts]

    def score(self, dimension: str, stage: str, examples: Sequence[MCExample]) -> list[MCRecord]:
        return [
            MCRecord.build(ex, self.ll.get(ex.id, [0.0] * len(ex.choices)), [False] * len(ex.choices))
            for ex in examples
        ]


def word_tokenizer(texts: Sequence[str]) -> PreTrainedTokenizerFast:
    pre = pre_tokenizers.Whitespace()
    words = sorted({w for t in texts for w, _ in pre.pre_tokenize_str(t)})
    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>", *words])}
    tk = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
