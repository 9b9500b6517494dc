"""``fsdp_cpu_ram_efficient_loading`` in one process: when a process builds on the meta device, and what
``prepare_model`` refuses. The 2-process runs (rank 1 on meta, filled from rank 0; the warning when a rank
loaded anyway) are in tests/train/test_final.py and tests/train/test_loop_subprocess.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adamoe.train.accelerator import (
    build_accelerator,
    builds_on_meta,
    prepare_model,
    ram_efficient_loading,
    weights_on_main_only,
)
from adamoe.train.config import TrainConfig


@pytest.mark.parametrize(
    ("fsdp", "flag", "expected"),
    [("true", "true", True), ("true", "false", False), ("false", "true", False), (None, "true", False)],
)
def test_ram_efficient_loading_needs_fsdp_and_the_flag(monkeypatch, fsdp, flag, expected) -> None:
    if fsdp is None:
        monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    else:
        monkeypatch.setenv("ACCELERATE_USE_FSDP", fsdp)
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", flag)
    assert ram_efficient_loading() is expected


def test_without_a_process_group_every_tensor_is_real(monkeypatch) -> None:
    """Alone (no torchrun) the flag changes nothing: this process is rank 0 and must hold the weights."""
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "true")
    assert not builds_on_meta()
    with weights_on_main_only() as on_meta:
        layer = nn.Linear(3, 2)
    assert on_meta is False and not layer.weight.is_meta


def test_prepare_model_refuses_a_meta_model_outside_fsdp(monkeypatch) -> None:
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    accelerator = build_accelerator(TrainConfig(device="cpu", progress=False), None)
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(3, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with pytest.raises(ValueError, match=r"model: 0\.weight is on the meta device on process 0; only FSDP2"):
        prepare_model(accelerator, model, optimizer)
