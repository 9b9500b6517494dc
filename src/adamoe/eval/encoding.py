"""Tokenisation of (context, continuation) requests with lm-eval 0.4's HF semantics.

``TemplateLM._encode_pair``: trailing context whitespace moves to the continuation; the whole string
and the context are encoded separately and the continuation is the tail of the whole encoding. Scores
agree with lm-eval item by item only if the tokens agree, so this is the one place that encodes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LMEncoder", "pad_token_id", "resolve_max_length"]

_DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when neither config nor tokenizer name a length


class LMEncoder:
    """Tokenises (context, continuation) pairs exactly as lm-eval's HFLM does.

    ``add_bos_token`` and ``prefix_token_id`` mirror HFLM's arguments of the same name (None = HFLM
    default: the tokenizer's own special-token behaviour; BOS, else EOS, as the empty-context prefix).
    """

    def __init__(
        self, tokenizer: Any, *, add_bos_token: bool | None = None, prefix_token_id: int | None = None
    ):
        self.tokenizer = tokenizer
        self.add_bos_token = add_bos_token
        if prefix_token_id is None:
            prefix_token_id = (
                tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
            )
        self.prefix_token_id = prefix_token_id
        self._prefix_text = tokenizer.decode(prefix_token_id) if prefix_token_id is not None else None

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """Token ids of ``text``; ``add_special_tokens`` (when given) overrides the encoder's ``add_bos_token``."""
        kwargs: dict[str, bool] = {}
        if add_special_tokens is not None:
            kwargs["add_special_tokens"] = add_special_tokens
        elif self.add_bos_token is not None:
            kwargs["add_special_tokens"] = self.add_bos_token
        if (
            add_special_tokens is None
            and self._prefix_text is not None
            and text.startswith(self._prefix_text)
        ):
            kwargs["add_special_tokens"] = False  # the string already carries its BOS
        return list(self.tokenizer.encode(text, **kwargs))

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids) split as lm-eval does (trailing context spaces join the continuation)."""
        if context == "":
            cont = self.encode(continuation, add_special_tokens=False)
            if not cont or self.prefix_token_id != cont[0]:
                return [self.prefix_token_id], cont
            return cont[:1], cont[1:]
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx) :]


def resolve_max_length(model: Any, tokenizer: Any) -> int:
    """The model's context window as lm-eval resolves it (config, then tokenizer, then 2048)."""
    config = getattr(model, "config", None)
    for cfg in (getattr(config, "text_config", None), config):
        if cfg is None:
            continue
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int) and value > 0:
                return value
    tok_len = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_len, int) and 0 < tok_len < 10**9:
        return tok_len
    return _DEFAULT_MAX_LENGTH


def pad_token_id(tokenizer: Any) -> int:
    """The id to pad batches with: the tokenizer's pad, else EOS, else BOS, else 0.

    Padded positions are always masked out of attention and scores, so any valid id does; this only
    avoids an out-of-vocabulary id for tokenizers that define no pad token.
    """
    for attr in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, int):
            return value
    return 0
