"""Low-rank LoRA experts vs the merged-weight row-by-row loop, forward and backward (fp32, atol 1e-5), and
what autograd keeps: never a tensor of the expert weights' size other than the frozen weights themselves."""

import pytest
import torch

from adamoe.experts import low_rank
from adamoe.experts.grouped_mm import grouped_swiglu
from adamoe.experts.low_rank import LowRank, adapted_grouped_mm, grouped_mm_takes, low_rank_swiglu
from tests.experts.test_grouped_mm import naive_rows

H, INTER, E, R = 16, 8, 4, 4  # R · 4 bytes: aligned, so _grouped_mm takes fp32 rank-4 products
S_GU, S_D = 2.0, 0.5


def factors(out_features: int, in_features: int, scaling: float, rank: int = R) -> LowRank:
    a = (torch.randn(E, rank, in_features) * in_features**-0.5).requires_grad_(True)
    b = (torch.randn(E, out_features, rank) * 0.3).requires_grad_(True)
    return LowRank(a=a, b=b, scaling=scaling)


def merged(weight: torch.Tensor, lr: LowRank) -> torch.Tensor:
    """W + s·B·A, written out per expert (the reference; the kernel never builds it)."""
    return weight + lr.scaling * torch.stack([lr.b[e] @ lr.a[e] for e in range(E)])


@pytest.fixture(params=["grouped_mm", "loop"])
def way(request, monkeypatch):
    """Both ways of running the per-expert products (CPU eager takes the loop; CUDA the grouped GEMM)."""
    if request.param == "grouped_mm":
        real = low_rank.grouped_mm_takes  # the rank check stays: an unaligned rank still loops
        monkeypatch.setattr(low_rank, "use_grouped_mm", lambda w, *lrs: real(w.dtype, *lrs))
    return request.param


@pytest.mark.parametrize("rank", [R, 3])  # 3: unaligned, the loop even where _grouped_mm fits
@pytest.mark.parametrize("counts", [[3, 0, 5, 1], [0, 0, 7, 0], [1, 1, 1, 1]])
def test_low_rank_swiglu_matches_the_merged_weights_loop(way, counts, rank):
    torch.manual_seed(0)
    n = sum(counts)
    rows = torch.randn(n, H, requires_grad=True)
    gate_up, down = torch.randn(E, 2 * INTER, H) * H**-0.5, torch.randn(E, H, INTER) * INTER**-0.5
    gu_lr, d_lr = factors(2 * INTER, H, S_GU, rank), factors(H, INTER, S_D, rank)
    probe = torch.randn(n, H)
    leaves = [rows, gu_lr.a, gu_lr.b, d_lr.a, d_lr.b]

    out = low_rank_swiglu(rows, gate_up, down, counts, gate_up_lora=gu_lr, down_lora=d_lr)
    got = torch.autograd.grad((out * probe).sum(), leaves)
    want_out = naive_rows(rows, merged(gate_up, gu_lr), merged(down, d_lr), counts)
    want = torch.autograd.grad((want_out * probe).sum(), leaves)

    torch.testing.assert_close(out, want_out, atol=1e-5, rtol=1e-5)
    for name, g, w in zip(("rows", "A_gate_up", "B_gate_up", "A_down", "B_down"), got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5, msg=name)
    assert got[2].abs().sum() > 0 and got[4].abs().sum() > 0


def test_one_projection_adapted_and_an_empty_batch(way):
    torch.manual_seed(1)
    counts = [2, 0, 3, 1]
    rows = torch.randn(6, H)
    gate_up, down = torch.randn(E, 2 * INTER, H), torch.randn(E, H, INTER)
    d_lr = factors(H, INTER, S_D)
    out = low_rank_swiglu(rows, gate_up, down, counts, down_lora=d_lr)
    torch.testing.assert_close(
        out, naive_rows(rows, gate_up, merged(down, d_lr), counts), atol=1e-5, rtol=1e-5
    )

    empty = low_rank_swiglu(rows[:0], gate_up, down, [0] * E, down_lora=d_lr)
    assert empty.shape == (0, H)
    (grad_b,) = torch.autograd.grad(empty.sum(), [d_lr.b])  # still connected, zero gradient
    assert torch.equal(grad_b, torch.zeros_like(grad_b))


def test_adapted_grouped_mm_leaves_rows_past_the_offsets_out():
    """The sync-free path's contract: groups end at ``offsets``; rows after the last are not read into any
    group (their outputs are masked by the caller), so the valid rows equal the merged product."""
    torch.manual_seed(2)
    rows, weight = torch.randn(9, H), torch.randn(E, 2 * INTER, H)
    lr = factors(2 * INTER, H, S_GU)
    offsets = torch.tensor([2, 2, 5, 6], dtype=torch.int32)  # rows 6..8 are null slots
    out = adapted_grouped_mm(rows, weight, offsets, lr)
    want = naive_rows_linear(rows[:6], merged(weight, lr), [2, 0, 3, 1])
    torch.testing.assert_close(out[:6], want, atol=1e-5, rtol=1e-5)


def naive_rows_linear(rows, weight, counts):
    expert_of_row = [e for e, n in enumerate(counts) for _ in range(n)]
    return torch.stack([weight[e] @ x for x, e in zip(rows, expert_of_row)])


def test_autograd_keeps_no_expert_sized_tensor_but_the_frozen_weights(way):
    """What the module exists for: a merged W + ΔW would be saved for backward; here nothing of the
    weights' size is, except the frozen weights themselves (parameters: alive anyway, no new memory)."""
    torch.manual_seed(3)
    counts = [4, 2, 3, 1]
    rows = torch.randn(10, H, requires_grad=True)
    gate_up = torch.nn.Parameter(torch.randn(E, 2 * INTER, H), requires_grad=False)
    down = torch.nn.Parameter(torch.randn(E, H, INTER), requires_grad=False)
    frozen = {gate_up.untyped_storage().data_ptr(), down.untyped_storage().data_ptr()}
    saved = []

    def pack(t):
        if t.numel() >= down.numel() and t.untyped_storage().data_ptr() not in frozen:
            saved.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lora = {"gate_up_lora": factors(2 * INTER, H, S_GU), "down_lora": factors(H, INTER, S_D)}
        low_rank_swiglu(rows, gate_up, down, counts, **lora)
        assert saved == []
        grouped_swiglu(rows, merged(gate_up, lora["gate_up_lora"]), merged(down, lora["down_lora"]), counts)
    assert (2 * INTER, H) in [
        s[1:] for s in saved
    ]  # merging first, the kernel keeps W + ΔW: the count sees it


def test_grouped_mm_takes_16_byte_aligned_ranks_only():
    def lr(rank):
        return LowRank(a=torch.empty(E, rank, H), b=torch.empty(E, H, rank), scaling=1.0)

    assert grouped_mm_takes(torch.bfloat16, lr(8), lr(16), None)
    assert not grouped_mm_takes(torch.bfloat16, lr(8), lr(4))  # 4 · 2 bytes: not 16-aligned
    assert grouped_mm_takes(torch.float32, lr(4)) and not grouped_mm_takes(torch.float32, lr(3))
    with pytest.raises(RuntimeError, match="16 bytes"):  # what the guard keeps away from torch
        torch._grouped_mm(torch.randn(4, H), torch.randn(E, H, 3), offs=torch.tensor([1, 2, 3, 4]).int())
