"""Shared experiment helpers: the command line a report carries, and the dense model's FLOPs per token."""

from __future__ import annotations

import argparse
import shlex

import torch

from adamoe.experiments.harness import command_text, dense_flops
from adamoe.hf.models import ModelSpec


def test_command_text_keeps_what_shapes_a_result_and_quotes_it():
    args = argparse.Namespace(
        config="examples/x.yaml",
        set=["lr=1e-4", "tasks=rte,sciq"],
        seeds=6,
        seed=3,
        quick=True,
        run_dir="runs/my run",
        threads=2,
    )
    text = command_text(["reproduce", "moe"], args)
    assert text == (
        "adamoe reproduce moe --config examples/x.yaml --set lr=1e-4 --set tasks=rte,sciq --seeds 6 "
        "--seed 3 --quick --run-dir 'runs/my run'"
    )
    assert shlex.split(text)[-1] == "runs/my run"
    bare = command_text(["demo"], argparse.Namespace(seed=0))
    assert bare == "adamoe demo --seed 0"


def test_dense_flops_is_every_linear_map_plus_attention_scores():
    model, _, _ = ModelSpec.parse("tiny-llama").load()
    c = model.config
    linear = sum(
        2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)
    )
    head_dim = c.hidden_size // c.num_attention_heads
    scores = (
        c.num_hidden_layers * 2 * 2 * 128 * head_dim * c.num_attention_heads
    )  # QK^T and AV, 128 positions
    assert dense_flops(model) == {"model_flops_per_token": float(linear + scores)}
    assert dense_flops(object()) == {}
