"""adamoe.bench.saved: the merged-weights formula by hand, and the count of expert-sized saved tensors on a
forward built here (a merged weight kept by a matmul is counted once; a parameter itself is not)."""

import pytest
import torch

from adamoe.bench.saved import merged_bytes_per_layer, saved_expert_bytes
from adamoe.hf.convert import convert
from adamoe.hf.tiny import tiny_model


def test_mixtral_8x7b_merged_bytes_by_hand():
    # (8 · 2·14336 · 4096 + 8 · 4096 · 14336) values · 2 bytes (bf16)
    assert merged_bytes_per_layer(experts=8, hidden=4096, intermediate=14336) == 2_818_572_288


def test_counts_a_merged_copy_not_the_parameter():
    model = convert(tiny_model("mixtral"), null_experts=2, top_k=2)
    experts = model.model.layers[0].mlp.experts
    x = torch.randn(3, experts.down_proj.shape[2], requires_grad=True)

    def forward():
        merged = experts.down_proj + 0.5  # (E, H, I), not a parameter: counted
        torch.matmul(x, merged[0].t())  # keeps a view of `merged` for backward
        torch.matmul(x, experts.down_proj[1].t()).sum()  # keeps a view of the parameter: not counted

    got = saved_expert_bytes(model, forward)
    assert got.total == experts.down_proj.numel() * 4 and got.layers == 2
    assert got.per_layer == got.total / 2
    every = saved_expert_bytes(model, forward, min_numel=0)
    assert every.total > got.total  # x (3, I) is counted once the threshold is off


def test_unconverted_model_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"^model: no fused experts found"):
        saved_expert_bytes(tiny_model("mixtral"), lambda: None)
