"""Request building: one :class:`ScoreItem` per multiple-choice example, its choices as token rows.

An item knows its per-choice context and continuation tokens (encoded by
:class:`~adamoe.eval.encoding.LMEncoder`), how many leading tokens every choice shares (run once by the
prefix batcher), and its cache key. Building checks what would make a score meaningless (a choice that
encodes to nothing or cannot fit the context window) before any model work starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adamoe.data.examples import MCExample
from adamoe.eval.encoding import LMEncoder

if TYPE_CHECKING:
    from adamoe.eval.cache import ScoreCache

__all__ = ["ScoreItem", "build_item", "cache_key", "shared_prefix_len"]


@dataclass
class ScoreItem:
    """One example's token-level work: rows = choices; ``prefix_len`` = tokens every row shares."""

    index: int
    example: MCExample
    ctx: list[list[int]]  # per-row context tokens
    cont: list[list[int]]  # per-row continuation tokens (the scored targets)
    prefix_len: int = 0  # 0 => score rows as full sequences
    key: str | None = None

    @property
    def rows(self) -> int:
        return len(self.cont)

    def full(self, r: int) -> list[int]:
        """Context + continuation token ids of row ``r``."""
        return self.ctx[r] + self.cont[r]

    def fits(self, max_length: int) -> bool:
        """Whether every row's scored window (all tokens but the last) fits ``max_length``."""
        return all(len(self.full(r)) <= max_length + 1 for r in range(self.rows))


def build_item(
    index: int, example: MCExample, encoder: LMEncoder, *, max_length: int, target_delimiter: str
) -> ScoreItem:
    """Encode every (context, choice) request of ``example``; reject choices that cannot be scored."""
    pairs = [encoder.encode_pair(c, t) for c, t in example.requests(target_delimiter)]
    item = ScoreItem(index=index, example=example, ctx=[p[0] for p in pairs], cont=[p[1] for p in pairs])
    for r, cont in enumerate(item.cont):
        if not cont:
            raise ValueError(f"example {example.id}: choice {r} encodes to no tokens; cannot score it")
        if len(cont) > max_length:
            raise ValueError(
                f"example {example.id}: choice {r} is {len(cont)} tokens, longer than max_length {max_length}"
            )
    return item


def cache_key(store: ScoreCache, item: ScoreItem) -> str:
    """The item's key in ``store``: model fingerprint, task, id and the exact token requests."""
    ex = item.example
    return store.key(task=ex.task, example_id=ex.id, prompt=json.dumps([item.ctx, item.cont]))


def shared_prefix_len(item: ScoreItem) -> int:
    """Leading tokens identical in every row, limited to context positions.

    Only context positions may be shared: a scored position needs its own logits per row.
    """
    limit = min(len(c) for c in item.ctx)
    first = item.full(0)
    n = 0
    while n < limit and all(item.full(r)[n] == first[n] for r in range(1, item.rows)):
        n += 1
    return n
