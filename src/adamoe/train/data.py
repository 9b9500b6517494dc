"""Training data: (prompt, target) pairs -> token ids with the prompt masked, and a resumable order.

The LM loss is taken on the target tokens only; the multiple-choice objective encodes every choice's
request of an item the same way (:class:`MCItem`) and collates the choices as rows (:func:`collate_mc`). Pairs are tokenised the way lm-eval splits a request:
``encode(prompt + target)`` and the first ``len(encode(prompt))`` tokens are the prompt, so a token
that merges across the boundary is not double counted and training sees exactly what scoring sees.

:class:`StepSampler` fixes the whole data order from ``(seed, epoch)`` alone, so its state is just a
position: a resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

IGNORE_INDEX = -100

Pair = tuple[str, str]


def mc_requests(examples: Iterable[Any], *, target_delimiter: str = " ") -> list[tuple[list[Pair], int]]:
    """(every choice's (prompt, target) request, gold index) of each multiple-choice example.

    Uses :meth:`adamoe.data.MCExample.requests`, so the requests are the very strings the scorer rates
    (partial-mode items such as WinoGrande put the choice in the prompt and the continuation is the target).
    """
    out: list[tuple[list[Pair], int]] = []
    for i, ex in enumerate(examples):
        if not (hasattr(ex, "requests") and hasattr(ex, "label")):
            raise ValueError(f"examples[{i}]: expected an MCExample, got {type(ex).__name__}")
        out.append(([(p, t) for p, t in ex.requests(target_delimiter)], int(ex.label)))
    return out


def mc_to_pairs(examples: Iterable[Any], *, target_delimiter: str = " ") -> list[Pair]:
    """(prompt, target) training pairs from multiple-choice examples: the request of the correct choice."""
    return [reqs[label] for reqs, label in mc_requests(examples, target_delimiter=target_delimiter)]


def as_pairs(items: Sequence[Any]) -> list[Pair]:
    """Accept (prompt, target) tuples or MCExamples; anything else is a one-line error."""
    if items and hasattr(items[0], "requests"):
        return mc_to_pairs(items)
    pairs: list[Pair] = []
    for i, item in enumerate(items):
        ok = isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(s, str) for s in item)
        if not ok:
            raise ValueError(
                f"train_pairs[{i}]: expected a (prompt, target) pair of strings, got {item!r:.80}"
            )
        if not item[1]:
            raise ValueError(f"train_pairs[{i}]: the target is empty, nothing to train on")
        pairs.append((item[0], item[1]))
    return pairs


@dataclass(frozen=True)
class Encoded:
    """One tokenised pair; ``labels`` is ``input_ids`` with the prompt positions set to -100."""

    input_ids: list[int]
    labels: list[int]

    @property
    def num_targets(self) -> int:
        """Tokens the LM loss is taken on (the first position is never predicted)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text)["input_ids"])


def encode_pair(tokenizer: Any, prompt: str, target: str, *, max_length: int) -> Encoded:
    """Tokenise one pair; over-long pairs lose tokens from the *left* so the target survives."""
    full = _encode(tokenizer, prompt + target)
    n_prompt = min(len(_encode(tokenizer, prompt)), len(full) - 1)
    if len(full) > max_length:
        cut = len(full) - max_length
        full = full[cut:]
        n_prompt = max(n_prompt - cut, 0)
    labels = [IGNORE_INDEX] * n_prompt + full[n_prompt:]
    return Encoded(input_ids=full, labels=labels)


def encode_pairs(tokenizer: Any, pairs: Sequence[Pair], *, max_length: int) -> list[Encoded]:
    """Tokenise (prompt, target) pairs; refuses a pair whose target is cut away by ``max_length``."""
    encoded = [encode_pair(tokenizer, p, t, max_length=max_length) for p, t in pairs]
    for i, enc in enumerate(encoded):
        if enc.num_targets == 0:
            raise ValueError(f"train_pairs[{i}]: no target token left after tokenisation (max_length?)")
    return encoded


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice item: each choice's request tokenised as a pair, and the gold choice's index."""

    choices: tuple[Encoded, ...]
    label: int


def encode_mc(
    tokenizer: Any, items: Sequence[tuple[Sequence[Pair], int]], *, max_length: int
) -> list[MCItem]:
    """Tokenise every choice of every item with :func:`encode_pair` (what the LM objective trains on);
    refuses an item with fewer than two choices, a gold index out of range, or a choice cut to nothing."""
    out = []
    for i, (requests, label) in enumerate(items):
        if len(requests) < 2 or not 0 <= label < len(requests):
            raise ValueError(
                f"train_pairs[{i}]: expected >= 2 choices and a gold index among them, "
                f"got {len(requests)} choice(s) and label {label}"
            )
        choices = tuple(encode_pair(tokenizer, p, t, max_length=max_length) for p, t in requests)
        if any(enc.num_targets == 0 for enc in choices):
            raise ValueError(
                f"train_pairs[{i}]: a choice has no target token left after tokenisation (max_length?)"
            )
        out.append(MCItem(choices=choices, label=label))
    return out


def collate(batch: Sequence[Encoded], *, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (padding labelled -100)."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, enc in enumerate(batch):
        n = len(enc.input_ids)
        ids[row, :n] = torch.tensor(enc.input_ids)
        labels[row, :n] = torch.tensor(enc.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def collate_mc(batch: Sequence[MCItem], *, pad_id: int) -> dict[str, torch.Tensor]:
    """Every choice of every item as one row of :func:`collate` (R = total choices, items in order),
    plus ``choice_index`` (B, C_max): the row of choice c of item b, -1 where item b has fewer choices,
    and ``gold`` (B,): each item's gold choice index."""
    rows = [enc for item in batch for enc in item.choices]
    width = max(len(item.choices) for item in batch)
    index = torch.full((len(batch), width), -1, dtype=torch.long)
    start = 0
    for b, item in enumerate(batch):
        n = len(item.choices)
        index[b, :n] = torch.arange(start, start + n)
        start += n
    gold = torch.tensor([item.label for item in batch], dtype=torch.long)
    return {**collate(rows, pad_id=pad_id), "choice_index": index, "gold": gold}


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its eos, else bos, else 0."""
    for attr in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return 0


class StepSampler:
    """Seeded, resumable order of global batches.

    Epoch ``e`` is a permutation drawn from ``seed + e`` (independent of any global RNG), cut into
    ``len // global_batch`` steps; the incomplete tail of each epoch is dropped so every step has the
    same global batch on any number of processes. State = (epoch, step within the epoch).
    """

    def __init__(self, *, num_examples: int, global_batch: int, seed: int) -> None:
        if global_batch > num_examples:
            raise ValueError(
                f"batch_size: the global batch (batch_size * grad_accum * processes = {global_batch}) "
                f"exceeds the {num_examples} training pairs"
            )
        self.num_examples = num_examples
        self.global_batch = global_batch
        self.seed = seed
        self.steps_per_epoch = num_examples // global_batch
        self.epoch = 0
        self.position = 0

    def order(self, epoch: int) -> list[int]:
        """The example order of ``epoch``: a permutation seeded by ``seed + epoch``."""
        gen = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.num_examples, generator=gen).tolist()

    def next_step(self) -> tuple[int, list[int]]:
        """(epoch, example indices of the next global batch); advances the state."""
        if self.position >= self.steps_per_epoch:
            self.epoch += 1
            self.position = 0
        start = self.position * self.global_batch
        indices = self.order(self.epoch)[start : start + self.global_batch]
        epoch = self.epoch
        self.position += 1
        return epoch, indices

    @property
    def epoch_finished(self) -> bool:
        return self.position >= self.steps_per_epoch

    def state_dict(self) -> dict[str, int]:
        """Position and identity of the sampler, for a checkpoint."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "global_batch": self.global_batch,
            "num_examples": self.num_examples,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume from :meth:`state_dict`; refuses a different seed, batch or data size."""
        for key in ("seed", "global_batch", "num_examples"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(
                    f"checkpoint: sampler {key} is {state[key]} but this run has {getattr(self, key)} "
                    "(resume with the same data, seed and global batch)"
                )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])


def micro_batches(
    indices: Sequence[int], *, batch_size: int, grad_accum: int, rank: int, world: int
) -> list[list[int]]:
    """This process's ``grad_accum`` micro-batches of one global batch (chunk ``a * world + rank``)."""
    out = []
    for a in range(grad_accum):
        chunk = a * world + rank
        out.append(list(indices[chunk * batch_size : (chunk + 1) * batch_size]))
    return out
