"""GPU smoke suite: ``pytest -m cuda`` on a machine with a CUDA GPU; skipped without one (tests/conftest.py).

Not run on a GPU: the project's machines have none, so these tests are written against documented APIs
and have only been collected (and skipped) here. Unlike the rest of tests/, which mirrors src/, this
folder crosses layers on purpose: it is the one place to run first on a new GPU machine.

1. The bf16 grouped GEMM path: a MoE layer in bf16 on CUDA takes the sync-free dispatch through
   ``torch._grouped_mm`` (SM80+), reads nothing back to the host while its routing is recorded
   (``torch.cuda.set_sync_debug_mode("error")``), and equals the per-expert loop.
2. Training steps of the tiny converted Mixtral in bf16 on CUDA: finite losses, routing counted.
3. Its final folder: reloaded with ``AutoModelForCausalLM`` (logits equal to the trained model's), then
   evaluated by ``adamoe eval`` on CUDA.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.cuda

H, E, INTER = 64, 4, 32  # bf16 rows of 64 / 32 values: the 16-byte strides torch._grouped_mm needs


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits.float()


def test_bf16_moe_layer_takes_grouped_mm_without_a_host_sync(monkeypatch) -> None:
    from adamoe.experts import SwiGLUExperts
    from adamoe.layer import MoELayer
    from adamoe.routing import TopKRouter
    from adamoe.stats import RoutingRecorder

    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("torch._grouped_mm is fast on SM80+ only; older GPUs take the counted path")
    torch.manual_seed(0)
    router = TopKRouter(hidden_size=H, num_experts=E, top_k=2, num_null=2)
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER)
    layer = MoELayer(router=router, experts=experts).to("cuda", torch.bfloat16).eval()
    hidden = torch.randn(96, H, device="cuda", dtype=torch.bfloat16)
    calls = []
    real = torch._grouped_mm
    monkeypatch.setattr(torch, "_grouped_mm", lambda *a, **k: calls.append(1) or real(*a, **k))
    with torch.no_grad(), RoutingRecorder(layer) as rec:
        layer(hidden)  # warm-up: kernels and caches
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = layer(hidden)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert len(calls) >= 4  # two projections per forward, two forwards
    reference = _loop_reference(hidden.float().cpu(), layer.last_routing, experts)
    torch.testing.assert_close(out.float().cpu(), reference, rtol=3e-2, atol=3e-2)
    assert rec.summary()["tokens"] == 2 * 96


def _loop_reference(hidden: torch.Tensor, routing, experts: torch.nn.Module) -> torch.Tensor:
    """Token by token, slot by slot, in fp32 on the CPU: sum of weight * SwiGLU expert (zero nulls add 0)."""
    gate_up, down = experts.gate_up_proj.float().cpu(), experts.down_proj.float().cpu()
    indices, weights = routing.indices.cpu().tolist(), routing.weights.float().cpu()
    out = torch.zeros_like(hidden)
    for t, picks in enumerate(indices):
        for j, e in enumerate(picks):
            if 0 <= e < E:
                g, u = (gate_up[e] @ hidden[t]).chunk(2)
                out[t] += weights[t, j] * (down[e] @ (torch.nn.functional.silu(g) * u))
    return out


def _trained(tmp_path: Path):
    from adamoe.hf.models import ModelSpec
    from adamoe.train import TrainConfig, train
    from tests.train.tiny_setup import arithmetic_pairs

    model, tok, _ = ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)
    config = TrainConfig(
        lr=1e-3, max_steps=4, batch_size=4, trainable="full", device="cuda", dtype="bf16", progress=False
    )
    return train(model, tok, arithmetic_pairs(16), config, final_dir=tmp_path / "model"), tok


def test_bf16_training_steps_on_cuda(tmp_path: Path) -> None:
    result, _ = _trained(tmp_path)
    losses = [r["loss"] for r in result.history]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert result.routing is not None and result.routing["tokens"] > 0
    assert 0.0 < result.routing["load"] <= 3.0


def test_final_folder_reloads_with_auto_model_and_evaluates(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    import adamoe.hf  # noqa: F401  (registers the adamoe_<family> Auto classes)
    from adamoe.cli import main

    result, _ = _trained(tmp_path)
    folder = tmp_path / "model"
    ids = (torch.arange(2 * 9).reshape(2, 9) * 7 % 128).to("cuda")
    reloaded = AutoModelForCausalLM.from_pretrained(folder).to("cuda")
    torch.testing.assert_close(
        _logits(reloaded, ids), _logits(result.model.to("cuda"), ids), rtol=1e-5, atol=1e-5
    )
    assert json.loads((folder / "config.json").read_text())["auto_map"]  # plain transformers' way in too
    run = tmp_path / "eval"
    args = ["eval", "--model", str(folder), "--task", "synthetic-arith", "--limit", "6"]
    assert main([*args, "--device", "cuda", "--dtype", "bf16", "--run-dir", str(run)]) == 0
    row = json.loads((run / "metrics.json").read_text())["table"][0]
    assert row["n"] == 6 and 0.0 <= row["load"] <= 3.0
