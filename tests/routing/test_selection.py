"""Selection functions vs hand examples and per-token loops: nulls are never group-restricted."""

import math

import pytest
import torch

from adamoe.routing.selection import (
    apply_null_bias,
    group_limited_mask,
    sigmoid_bias_select,
    softmax_probs,
    topk_with_nulls,
    true_topk_mass,
)


def test_null_bias_shifts_only_the_null_columns():
    logits = torch.arange(12, dtype=torch.float32).reshape(2, 6)
    out = apply_null_bias(logits, 4, 1.5)
    assert torch.equal(out[:, :4], logits[:, :4])
    assert torch.equal(out[:, 4:], logits[:, 4:] + 1.5)
    assert apply_null_bias(logits, 4, 0.0) is logits  # the dial at 0 is bit-exact
    assert apply_null_bias(logits, 6, 3.0) is logits  # no nulls: nothing to shift


def test_group_masks_by_hand():
    # E = 6 in 3 groups of 2: group scores max = [0.5, 0.9, 0.3], top2_sum = [0.9, 1.0, 0.6]
    scores = torch.tensor([[0.4, 0.5, 0.1, 0.9, 0.3, 0.3]])
    by_max = group_limited_mask(scores, groups=(3, 1), group_score="max")
    assert by_max.tolist() == [[False, False, True, True, False, False]]
    by_sum = group_limited_mask(scores, groups=(3, 2), group_score="top2_sum")
    assert by_sum.tolist() == [[True, True, True, True, False, False]]
    with pytest.raises(ValueError, match="group_score"):
        group_limited_mask(scores, groups=(3, 1), group_score="mean")


def naive_topk(row: list[float], k: int, eligible: list[bool]) -> list[int]:
    order = sorted((i for i in range(len(row)) if eligible[i]), key=lambda i: -row[i])
    return order[:k]


def test_softmax_topk_with_groups_keeps_every_null_eligible():
    torch.manual_seed(0)
    num_experts, m, k = 4, 3, 3
    logits = torch.randn(50, num_experts + m) * 2
    probs = softmax_probs(logits)
    vals, idx = topk_with_nulls(probs, k, num_experts=num_experts, groups=(2, 1))
    for row_p, row_idx, row_vals in zip(probs.tolist(), idx.tolist(), vals.tolist()):
        best_group = max(range(2), key=lambda g: max(row_p[2 * g : 2 * g + 2]))
        eligible = [i // 2 == best_group for i in range(num_experts)] + [True] * m
        assert sorted(row_idx) == sorted(naive_topk(row_p, k, eligible))
        assert row_vals == pytest.approx([row_p[i] for i in row_idx])
    assert (idx >= num_experts).any()
    _, idx_all = topk_with_nulls(probs, k, num_experts=num_experts)
    assert torch.equal(idx_all, torch.topk(probs, k).indices)


def test_sigmoid_bias_steers_selection_not_weights():
    torch.manual_seed(1)
    num_experts, m, k = 4, 2, 2
    logits = torch.randn(40, num_experts + m)
    bias = torch.tensor([0.0, 0.0, 0.0, 5.0, 0.0, -5.0])  # expert 3 always picked, null 5 never
    idx, vals, probs = sigmoid_bias_select(logits, k, num_experts=num_experts, bias=bias, groups=(2, 1))
    scores = logits.sigmoid()
    for row_s, row_idx, row_vals in zip(scores.tolist(), idx.tolist(), vals.tolist()):
        biased = [s + float(b) for s, b in zip(row_s, bias)]
        group_score = [sum(sorted(biased[2 * g : 2 * g + 2])[-2:]) for g in range(2)]
        best_group = max(range(2), key=lambda g: group_score[g])
        eligible = [i // 2 == best_group for i in range(num_experts)] + [True] * m
        assert sorted(row_idx) == sorted(naive_topk(biased, k, eligible))
        assert row_vals == pytest.approx([row_s[i] for i in row_idx])  # unbiased scores
        assert 3 in row_idx and 5 not in row_idx
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(40))


def test_true_topk_mass_ignores_nulls_and_their_bias():
    logits = torch.tensor([[1.0, 2.0, 0.0, 9.0, 9.0]])  # E = 3, two strong nulls
    ex = [math.exp(v) for v in (1.0, 2.0, 0.0)]
    want = (ex[1] + ex[0]) / sum(ex)
    assert float(true_topk_mass(logits, 2, num_experts=3)) == pytest.approx(want)
    shifted = apply_null_bias(logits, 3, -4.0)
    assert float(true_topk_mass(shifted, 2, num_experts=3)) == pytest.approx(want)
