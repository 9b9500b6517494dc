"""The training section's ``adamoe_grouped_torch_act`` candidate: the ``adamoe_grouped`` step with the
SiLU-gate's C++ kernels off inside its timed callable only (no timing here: one call of each step)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from adamoe.bench import training
from adamoe.bench.settings import BenchSettings
from adamoe.experts import swiglu_act


class _Counting:
    """A stand-in activation extension that counts the kernels reached and refuses to run them."""

    def __init__(self):
        self.calls = 0

    def __getattr__(self, name):
        self.calls += 1
        raise RuntimeError(f"kernel {name} reached")


@pytest.fixture
def variants():
    s = replace(BenchSettings(threads=1).shrink(), tokens=32, hidden=16, ffn=24)
    gen = torch.Generator().manual_seed(0)
    x, grad = torch.randn(s.tokens, s.hidden, generator=gen), torch.randn(s.tokens, s.hidden, generator=gen)
    return training._training_variants(s, x, grad)


def test_only_the_torch_act_candidate_is_kept_off_the_kernels(variants, monkeypatch):
    assert training.TORCH_ACT == "adamoe_grouped_torch_act" and training.TORCH_ACT in variants
    fake = _Counting()
    monkeypatch.setattr(swiglu_act, "_module", lambda: fake)
    variants[training.TORCH_ACT]()  # forward + backward without reaching a kernel
    assert fake.calls == 0
    with pytest.raises(RuntimeError, match="kernel silu_mul_out reached"):
        variants["adamoe_grouped"]()  # the same step outside the block does reach it
    variants[training.TORCH_ACT]()  # and the block did not leak into later calls
    assert fake.calls == 1


def test_the_torch_act_candidate_is_the_grouped_step_on_the_torch_path(monkeypatch):
    """Its own copy of the ``adamoe_grouped`` layer (same weights, backend ``grouped``); one step of each
    gives the same gradients within fp32 round-off (kernels built) or bitwise (not built)."""
    layers = []
    real_step = training.train_step_fn

    def recording(module, x, grad):
        layers.append(module)
        return real_step(module, x, grad)

    monkeypatch.setattr(training, "train_step_fn", recording)
    s = replace(BenchSettings(threads=1).shrink(), tokens=32, hidden=16, ffn=24)
    gen = torch.Generator().manual_seed(1)
    x, grad = torch.randn(s.tokens, s.hidden, generator=gen), torch.randn(s.tokens, s.hidden, generator=gen)
    variants = training._training_variants(s, x, grad)
    names = [n for n in variants if n.startswith("adamoe_")]  # ours come first, in build order
    by_name = dict(zip(names, layers))
    grouped, torch_act = by_name["adamoe_grouped"], by_name[training.TORCH_ACT]
    assert grouped is not torch_act and grouped.experts.backend == torch_act.experts.backend == "grouped"
    for name in ("adamoe_grouped", training.TORCH_ACT):
        variants[name]()
    tol = dict(rtol=1e-5, atol=1e-5) if swiglu_act.available() else dict(rtol=0, atol=0)
    for (key, a), b in zip(grouped.named_parameters(), torch_act.parameters()):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0, msg=key)  # same weights
        torch.testing.assert_close(a.grad, b.grad, **tol, msg=key)
