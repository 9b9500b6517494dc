"""Pair encoding (prompt masked), MC conversion and items, collation, and the resumable step sampler."""

from __future__ import annotations

import pytest
import torch

from adamoe.data import MCExample
from adamoe.train.data import (
    IGNORE_INDEX,
    StepSampler,
    as_pairs,
    collate,
    collate_mc,
    encode_mc,
    encode_pair,
    mc_to_pairs,
    micro_batches,
)

from .tiny_setup import SPECIALS, char_tokenizer


def char_ids(text: str) -> list[int]:
    """Independent reference for the char tokenizer: printable ASCII after the 4 specials."""
    return [len(SPECIALS) + ord(c) - 32 for c in text]


def test_encode_pair_masks_the_prompt_and_keeps_the_target() -> None:
    enc = encode_pair(char_tokenizer(), "12+7=", "19", max_length=64)
    assert enc.input_ids == [1, *char_ids("12+7=19")]
    assert enc.labels == [IGNORE_INDEX] * 6 + char_ids("19")
    assert enc.num_targets == 2


def test_overlong_pairs_lose_prompt_tokens_from_the_left() -> None:
    enc = encode_pair(char_tokenizer(), "abcdefgh", "XY", max_length=5)
    assert enc.input_ids == char_ids("fghXY")
    assert enc.labels == [IGNORE_INDEX] * 3 + char_ids("XY")


def test_mc_examples_become_context_plus_correct_choice() -> None:
    std = MCExample(id="a", context="Sky is", choices=["green", "blue"], label=1, task="t")
    partial = MCExample(
        id="b", context="The cat sat on ", choices=["mat", "sun"], label=0, task="t", continuation="it"
    )
    assert mc_to_pairs([std, partial]) == [("Sky is", " blue"), ("The cat sat on mat", " it")]
    assert as_pairs([std]) == [("Sky is", " blue")]


@pytest.mark.parametrize("bad", [("only prompt",), ("p", 3), ("p", "")])
def test_bad_pairs_are_one_line_errors(bad: tuple) -> None:
    with pytest.raises(ValueError, match=r"^train_pairs\[1\]: "):
        as_pairs([("ok", "fine"), bad])


def test_collate_right_pads_with_ignored_labels() -> None:
    tok = char_tokenizer()
    batch = collate(
        [encode_pair(tok, "1+1=", "2", max_length=64), encode_pair(tok, "10+10=", "20", max_length=64)],
        pad_id=0,
    )
    assert batch["input_ids"].shape == (2, 9)
    assert batch["attention_mask"][0].tolist() == [1] * 6 + [0] * 3
    assert batch["labels"][0, 6:].tolist() == [IGNORE_INDEX] * 3
    assert batch["input_ids"][0, 6:].tolist() == [0, 0, 0]


def test_mc_items_collate_every_choice_as_a_row_with_its_item_and_gold() -> None:
    tok = char_tokenizer()
    items = encode_mc(
        tok, [([("1+1=", "2"), ("1+1=", "11")], 0), ([("a", "b"), ("a", "c"), ("a", "dd")], 2)], max_length=64
    )
    batch = collate_mc(items, pad_id=0)
    assert batch["input_ids"].shape == (5, 7)  # 2 + 3 choice rows; the longest is "<s>1+1=11"
    assert batch["input_ids"][4, :4].tolist() == [1, *char_ids("add")]
    assert batch["labels"][4, :4].tolist() == [IGNORE_INDEX] * 2 + char_ids("dd")
    assert batch["choice_index"].tolist() == [[0, 1, -1], [2, 3, 4]]
    assert batch["gold"].tolist() == [0, 2]


@pytest.mark.parametrize("bad", [([("p", "x")], 0), ([("p", "x"), ("p", "y")], 2)])
def test_mc_items_need_two_choices_and_a_gold_among_them(bad: tuple) -> None:
    with pytest.raises(ValueError, match=r"^train_pairs\[0\]: expected >= 2 choices"):
        encode_mc(char_tokenizer(), [bad], max_length=64)


def test_sampler_epochs_are_seeded_permutations_without_the_tail() -> None:
    sampler = StepSampler(num_examples=10, global_batch=3, seed=5)
    assert sampler.steps_per_epoch == 3
    steps = [sampler.next_step() for _ in range(6)]
    assert [e for e, _ in steps] == [0, 0, 0, 1, 1, 1]
    epoch0 = [i for _, idx in steps[:3] for i in idx]
    assert len(set(epoch0)) == 9
    assert epoch0 == torch.randperm(10, generator=torch.Generator().manual_seed(5)).tolist()[:9]
    assert epoch0 != [i for _, idx in steps[3:] for i in idx]


def test_sampler_state_resumes_the_same_order() -> None:
    straight = StepSampler(num_examples=11, global_batch=2, seed=1)
    expected = [straight.next_step() for _ in range(9)]
    first = StepSampler(num_examples=11, global_batch=2, seed=1)
    head = [first.next_step() for _ in range(4)]
    second = StepSampler(num_examples=11, global_batch=2, seed=1)
    second.load_state_dict(first.state_dict())
    assert head + [second.next_step() for _ in range(5)] == expected


def test_sampler_refuses_a_different_global_batch_or_too_few_examples() -> None:
    state = StepSampler(num_examples=11, global_batch=2, seed=1).state_dict()
    with pytest.raises(ValueError, match=r"^checkpoint: sampler global_batch"):
        StepSampler(num_examples=11, global_batch=4, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"^batch_size: .*exceeds the 3 training pairs"):
        StepSampler(num_examples=3, global_batch=4, seed=1)


def test_micro_batches_partition_the_global_batch() -> None:
    indices = list(range(100, 112))
    parts = [
        mb
        for rank in range(2)
        for mb in micro_batches(indices, batch_size=2, grad_accum=3, rank=rank, world=2)
    ]
    assert sorted(i for mb in parts for i in mb) == indices
    assert all(len(mb) == 2 for mb in parts)
