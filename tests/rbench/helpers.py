"""Shared helpers of the bench tests: a canned evaluator and a word-level tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from adamoe.data.examples import MCExample
from adamoe.eval.scoring import MCRecord


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
