"""The sync-free device path (CUDA's, exercised here on CPU): same outputs and gradients as the per-token
loop of ``tests/test_dispatch.py`` (forward and backward), with no read-back to the host."""

from __future__ import annotations

import pytest
import torch

from adamoe import dispatch as dsp
from adamoe.experts import LoRASwiGLUExperts, SwiGLUExperts
from adamoe.routing.base import Routing
from adamoe.routing.topk import TopKRouter
from tests.test_dispatch import INTER, ROUTINGS, E, H, assert_matches_loop


def _no_host_read(*args, **kwargs):
    raise AssertionError("host read-back in the sync-free path")


@pytest.fixture(autouse=True)
def _cpu_takes_the_device_path(monkeypatch):
    monkeypatch.setattr(dsp, "SYNC_FREE_DEVICES", ("cpu",))


@pytest.mark.parametrize("name", list(ROUTINGS))
def test_sync_free_dispatch_matches_the_per_token_loop(name, monkeypatch):
    torch.manual_seed(0)
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER)
    taken = []
    real = dsp.dispatch_sync_free
    monkeypatch.setattr(dsp, "dispatch_sync_free", lambda *a: taken.append(1) or real(*a))
    assert_matches_loop(name, experts, tokens=24)
    assert taken == [1]  # dispatch took the device path (identity nulls are added by dispatch after it)


def test_a_dtype_grouped_mm_does_not_fit_takes_the_counted_path_and_says_so_once(monkeypatch):
    """fp32 on CUDA (stood in for by a patched guard): not torch._grouped_mm, whose own fallback syncs and
    loops, but the counted path, still equal to the per-token loop; one warning however many layers."""
    from adamoe.experts import backend

    monkeypatch.setattr(backend, "grouped_mm_fits", lambda weight, **kw: False)
    dsp._warn_counted.cache_clear()
    torch.manual_seed(0)
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER)
    counted = []
    real = SwiGLUExperts.forward_grouped  # patched on the class: an instance wrapper opts out of the path
    monkeypatch.setattr(SwiGLUExperts, "forward_grouped", lambda *a: counted.append(1) or real(*a))
    with pytest.warns(UserWarning, match="counted path") as caught:
        assert_matches_loop("adamoe_zero_opt2", experts, tokens=24)
        assert_matches_loop("adamoe_zero_opt2", experts, tokens=24)
    assert counted == [1, 1] and len(caught) == 1


@pytest.mark.parametrize("name", ["adamoe_zero_opt2", "adamoe_identity"])
def test_sync_free_path_reads_nothing_back_to_the_host(name, monkeypatch):
    num_null, k, null_type, _ = ROUTINGS[name]
    router = TopKRouter(hidden_size=H, num_experts=E, top_k=k, num_null=num_null, null_type=null_type)
    experts = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER)
    hidden = torch.randn(24, H, requires_grad=True)
    routing = router(hidden)
    for method in ("tolist", "item", "__bool__", "__int__", "__index__"):  # each is a sync on CUDA
        monkeypatch.setattr(torch.Tensor, method, _no_host_read)
    out = dsp.dispatch_sync_free(hidden, routing, experts)
    out.sum().backward()
    monkeypatch.undo()
    assert hidden.grad is not None and torch.isfinite(hidden.grad).all()


def test_plan_on_device_puts_null_and_empty_slots_after_the_offsets():
    idx = torch.tensor([[2, 5], [-1, 0], [2, 4], [1, 0]])  # E = 4: 4 and 5 are nulls, -1 empty
    routing = Routing(
        indices=idx,
        weights=torch.ones(4, 2),
        probs=torch.empty(0),
        logits=torch.empty(0),
        num_experts=4,
        num_null=2,
    )
    order, valid, offsets = dsp.plan_on_device(routing)
    assert offsets.tolist() == [2, 3, 5, 5] and offsets.dtype == torch.int32
    assert order[:5].tolist() == [3, 7, 6, 0, 4]  # expert 0: slots 3, 7; expert 1: 6; expert 2: 0, 4
    assert valid.tolist() == [True] * 5 + [False] * 3
    assert sorted(order[5:].tolist()) == [1, 2, 5]


def test_other_experts_keep_their_own_path():
    plain = SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER)
    assert dsp.fused_swiglu_weights(plain) == (plain.gate_up_proj, plain.down_proj)
    for backend in ("grouped", "loop"):
        assert (
            dsp.fused_swiglu_weights(
                SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER, backend=backend)
            )
            is None
        )
    lora = LoRASwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER, rank=2, alpha=4.0)
    assert dsp.fused_swiglu_weights(lora) is None
    plain.forward_grouped = plain.forward_grouped  # wrapped on the instance (expert dropout, recorders)
    assert dsp.fused_swiglu_weights(plain) is None
    assert dsp.fused_swiglu_weights(object()) is None  # only a grouped-experts protocol: no opt-in
