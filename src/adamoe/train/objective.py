"""Training objectives: what a training item is, how a micro-batch is collated, and its summed loss.

``lm`` (the default): cross-entropy on the gold target's tokens, summed over the tokens; the loop
divides by the target tokens of the global batch, so it is a token mean.

``mc``: for an item with choices ``c_1..c_n`` (the requests the evaluator scores: same prompt, same
target delimiter, :meth:`adamoe.data.MCExample.requests`), the loss is ::

    -log softmax_i(s_i)[gold],   s_i = sum over c_i's continuation tokens of log p(token | prefix)

summed over items; the loop divides by the items of the global batch. Why: the LM loss on the gold
answer only rewards saying the answer's tokens, so a short label word ("True") is learnt as a word
rather than as the right choice, and a per-token mean lets long answers (ARC's ~4 tokens) outweigh
one-token labels (RTE). This loss only separates the choices, and every item weighs the same.

Both project onto the vocabulary only where some row has a target (``logits_to_keep``): the LM head is
a large share of a small model's FLOPs and prompts carry no loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from adamoe.train.data import (
    IGNORE_INDEX,
    Encoded,
    MCItem,
    as_pairs,
    collate,
    collate_mc,
    encode_mc,
    encode_pairs,
    mc_requests,
)

__all__ = ["Objective", "choice_logprobs", "get_objective", "mc_cross_entropy"]


class Objective(Protocol):
    """What the loop needs of an objective; ``units`` are what the loss is a mean over."""

    name: str
    """``TrainConfig.objective``; the step record's loss key is ``<name>_loss``."""
    unit: str
    """Record key of the global batch's unit count (``target_tokens`` or ``items``)."""

    def encode(self, tokenizer: Any, items: Sequence[Any], *, max_length: int) -> list[Any]: ...

    def units(self, example: Any) -> int: ...

    def collate(self, batch: Sequence[Any], *, pad_id: int) -> dict[str, torch.Tensor]: ...

    def loss_sum(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...


def target_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (R, K, V) in fp32, targets (R, K)) at the K positions where some row has a target;
    ``targets`` is -100 where a row has none. Row r, position k predicts ``targets[r, k]``."""
    targets = batch["labels"][:, 1:]
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        use_cache=False,
        logits_to_keep=keep,
    ).logits
    return logits.float(), targets[:, keep]


def choice_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed log-likelihood of each row's targets: logits (R, K, V), targets (R, K) with -100 = none
    -> (R,)."""
    nll = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    )
    return -nll.reshape(targets.shape).sum(dim=1)


def mc_cross_entropy(scores: torch.Tensor, choice_index: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy over each item's choices: scores (R,) per choice row, choice_index (B, C)
    rows of each item's choices (-1 = no such choice), gold (B,) -> scalar (sum over the B items)."""
    table = scores[choice_index.clamp(min=0)].masked_fill(choice_index < 0, float("-inf"))
    return F.cross_entropy(table, gold, reduction="sum")


class LMObjective:
    """Cross-entropy on the gold target's tokens; accepts (prompt, target) pairs or MCExamples."""

    name = "lm"
    unit = "target_tokens"

    def encode(self, tokenizer: Any, items: Sequence[Any], *, max_length: int) -> list[Encoded]:
        return encode_pairs(tokenizer, as_pairs(items), max_length=max_length)

    def units(self, example: Encoded) -> int:
        return example.num_targets

    def collate(self, batch: Sequence[Encoded], *, pad_id: int) -> dict[str, torch.Tensor]:
        return collate(batch, pad_id=pad_id)

    def loss_sum(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits, targets = target_logits(model, batch)
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            targets.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )


class MCObjective:
    """Cross-entropy over each item's choices (module docstring); accepts MCExamples only."""

    name = "mc"
    unit = "items"

    def encode(self, tokenizer: Any, items: Sequence[Any], *, max_length: int) -> list[MCItem]:
        if items and not hasattr(items[0], "requests"):
            raise ValueError(
                "objective: 'mc' trains on multiple-choice examples (MCExample), got "
                f"{type(items[0]).__name__} items (use objective 'lm' for (prompt, target) pairs)"
            )
        return encode_mc(tokenizer, mc_requests(items), max_length=max_length)

    def units(self, example: MCItem) -> int:
        return 1

    def collate(self, batch: Sequence[MCItem], *, pad_id: int) -> dict[str, torch.Tensor]:
        return collate_mc(batch, pad_id=pad_id)

    def loss_sum(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        scores = choice_logprobs(*target_logits(model, batch))
        return mc_cross_entropy(scores, batch["choice_index"], batch["gold"])


_OBJECTIVES: dict[str, Objective] = {"lm": LMObjective(), "mc": MCObjective()}


def get_objective(name: str) -> Objective:
    """The objective called `name` (``TrainConfig.objective``, validated there)."""
    return _OBJECTIVES[name]
