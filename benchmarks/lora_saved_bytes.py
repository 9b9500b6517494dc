"""Bytes autograd keeps for backward per MoE layer with LoRA on the fused experts: PEFT's merging wrapper
against the low-rank path (issue 19, item 3). Memory, not time: nothing here is timed.

`python benchmarks/lora_saved_bytes.py [--families mixtral,qwen2_moe] [--rank 8] [--tokens 6]`

For each tiny converted family (4 null experts, k = 3, fp32) it runs one training forward of a
(1, tokens) batch three ways (no LoRA, ``lora_config_for(..., low_rank_experts=False)`` = PEFT's
``ParamWrapper`` merging ``W + ΔW``, and the default low-rank path) and prints, per MoE layer, the
expert-shaped bytes saved for backward (tensors at least as large as the smallest expert weight that
are not a parameter) and all non-parameter saved bytes (adamoe.bench.saved). Then the Mixtral-8x7B
figure by formula (bf16): the merged weights one layer keeps, 3·E·H·I·2 bytes.
"""

from __future__ import annotations

import argparse
import copy
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ADAMOE_AUTOTUNE", "0")  # the backend rule, never a timed choice

import torch
from peft import get_peft_model

from adamoe.bench.saved import merged_bytes_per_layer, saved_expert_bytes
from adamoe.hf.convert import convert
from adamoe.hf.peft_utils import lora_config_for
from adamoe.hf.tiny import tiny_model

MIXTRAL_8X7B = {"experts": 8, "hidden": 4096, "intermediate": 14336, "layers": 32}


def measure(family: str, *, rank: int, tokens: int) -> dict[str, tuple[float, float]]:
    """Per-layer (expert-shaped bytes, all non-parameter saved bytes) for each way of running LoRA."""
    base = convert(tiny_model(family), null_experts=4, top_k=3, gate2_init="random", seed=1)
    models = {
        "no LoRA (all weights train)": base,
        "PEFT merge": get_peft_model(
            copy.deepcopy(base), lora_config_for(base, rank=rank, alpha=2 * rank, low_rank_experts=False)
        ),
        "low-rank": get_peft_model(copy.deepcopy(base), lora_config_for(base, rank=rank, alpha=2 * rank)),
    }
    ids = torch.arange(5, 5 + tokens).unsqueeze(0)
    out = {}
    for name, model in models.items():
        model.train()
        expert = saved_expert_bytes(model, lambda m=model: m(ids).logits)
        every = saved_expert_bytes(model, lambda m=model: m(ids).logits, min_numel=0)
        out[name] = (expert.per_layer, every.per_layer)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="mixtral,qwen2_moe")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=6)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # the merge path's own warning is the point of the comparison
    print(f"saved for backward per MoE layer, fp32, LoRA r={args.rank}, 1 x {args.tokens} tokens")
    print("| family | way | expert-shaped bytes per MoE layer | all non-parameter saved bytes / MoE layers |")
    print("|---|---|---|---|")
    for family in args.families.split(","):
        for name, (expert, every) in measure(family, rank=args.rank, tokens=args.tokens).items():
            print(f"| {family} | {name} | {expert:,.0f} | {every:,.0f} |")
    m = MIXTRAL_8X7B
    per_layer = merged_bytes_per_layer(
        experts=m["experts"], hidden=m["hidden"], intermediate=m["intermediate"]
    )
    print(
        f"Mixtral-8x7B (formula, bf16): PEFT merge keeps {per_layer / 1e9:.2f} GB per layer, "
        f"{per_layer * m['layers'] / 1e9:.1f} GB over {m['layers']} layers; low-rank: 0"
    )


if __name__ == "__main__":
    main()
