"""The default experts backend: the choice logic, driven by a fake timer (nothing here is timed).

The fake timer runs every candidate once (so a candidate that crashes would fail the test) and returns
invented seconds; the checks are that the fastest wins, that a bucket is timed once, that forward-only
and forward+backward are separate buckets, that pytest/``ADAMOE_AUTOTUNE=0`` fall back to the documented
rule without timing, and that whatever is chosen computes the same as the per-expert reference loop.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from adamoe.experts import SwiGLUExperts, backend

E, H, INTER = 4, 16, 8


def _inputs(rows: int, *, grad: bool = False, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    counts = [rows // E] * E
    counts[0] += rows - sum(counts)
    x = torch.randn(rows, H, generator=g).requires_grad_(grad)
    gate_up = (torch.randn(E, 2 * INTER, H, generator=g) * H**-0.5).requires_grad_(grad)
    down = (torch.randn(E, H, INTER, generator=g) * INTER**-0.5).requires_grad_(grad)
    return x, gate_up, down, counts


def _naive(x, gate_up, down, counts):
    """Row by row, expert by expert: silu(W_g x) * (W_u x) then W_d."""
    out, start = [], 0
    for e, n in enumerate(counts):
        for r in range(start, start + n):
            g, u = gate_up[e, :INTER] @ x[r], gate_up[e, INTER:] @ x[r]
            out.append(down[e] @ (F.silu(g) * u))
        start += n
    return torch.stack(out)


class FakeTimer:
    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds, self.calls = seconds, 0

    def __call__(self, fns):
        self.calls += 1
        for fn in fns.values():
            fn()
        return {name: self.seconds[name] for name in fns}


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    backend.clear_backend_choices()
    monkeypatch.setenv(backend.AUTOTUNE_ENV, "1")
    yield
    backend.clear_backend_choices()


@pytest.mark.parametrize("fastest", backend.CANDIDATES)
def test_fastest_candidate_is_chosen_and_cached_per_bucket(fastest):
    other = next(c for c in backend.CANDIDATES if c != fastest)
    timer = FakeTimer({fastest: 1.0, other: 1.5})
    choice = backend.choose_backend(*_inputs(40), timer=timer)
    assert choice.backend == fastest and choice.reason.startswith("autotune (fwd, 64-row bucket)")
    assert choice.seconds == {fastest: 1.0, other: 1.5}
    # 33..64 rows share the bucket: no second trial even if the timer would now say otherwise
    timer.seconds = {fastest: 9.0, other: 1.0}
    assert backend.choose_backend(*_inputs(60), timer=timer).backend == fastest and timer.calls == 1
    # 65 rows is a new bucket, timed again
    assert backend.choose_backend(*_inputs(65), timer=timer).backend == other and timer.calls == 2
    assert len(backend.chosen_backends()) == 2


def test_forward_and_forward_backward_are_separate_buckets():
    timer = FakeTimer({"grouped": 1.0, "torch_grouped_mm": 2.0})
    fwd = backend.choose_backend(*_inputs(16), timer=timer)
    timer.seconds = {"grouped": 3.0, "torch_grouped_mm": 2.0}
    bwd = backend.choose_backend(*_inputs(16, grad=True), timer=timer)
    assert (fwd.backend, bwd.backend) == ("grouped", "torch_grouped_mm") and timer.calls == 2
    assert "fwd+bwd" in bwd.reason
    with torch.no_grad():  # no graph to build: the forward-only bucket again
        assert backend.choose_backend(*_inputs(16, grad=True), timer=timer).backend == "grouped"
    assert timer.calls == 2


def test_trials_leave_the_real_parameters_untouched():
    x, gate_up, down, counts = _inputs(12, grad=True)
    backend.choose_backend(
        x, gate_up, down, counts, timer=FakeTimer({"grouped": 1.0, "torch_grouped_mm": 2.0})
    )
    assert x.grad is None and gate_up.grad is None and down.grad is None


@pytest.mark.parametrize("env", ["0", None])
def test_no_timing_when_switched_off_or_under_pytest(monkeypatch, env):
    if env is None:
        monkeypatch.delenv(backend.AUTOTUNE_ENV)  # unset: pytest (PYTEST_CURRENT_TEST) switches it off
    else:
        monkeypatch.setenv(backend.AUTOTUNE_ENV, env)
    timer = FakeTimer({"grouped": 2.0, "torch_grouped_mm": 1.0})
    choice = backend.choose_backend(*_inputs(8), timer=timer)
    assert timer.calls == 0 and choice.backend == "grouped" and choice.reason.startswith("rule:")
    assert [c.reason for c in backend.chosen_backends().values()] == [choice.reason]  # reported, not timed


def test_rule_per_device():
    assert backend.rule_backend("cuda").backend == "torch_grouped_mm"
    assert backend.rule_backend("cpu", compiling=True).backend == "torch_grouped_mm"
    assert backend.rule_backend("cpu").backend == "grouped"
    assert not backend.autotune_enabled("cuda")


@pytest.mark.parametrize("fastest", backend.CANDIDATES)
def test_auto_backend_matches_the_naive_loop_whichever_wins(monkeypatch, fastest):
    other = next(c for c in backend.CANDIDATES if c != fastest)
    timer = FakeTimer({fastest: 1.0, other: 2.0})
    real = backend.choose_backend
    monkeypatch.setattr(backend, "choose_backend", lambda *a: real(*a, timer=timer))
    x, gate_up, down, counts = _inputs(10, grad=True)
    out = backend.auto_swiglu(x, gate_up, down, counts)
    assert backend.chosen_backends()[next(iter(backend.chosen_backends()))].backend == fastest
    probe = torch.randn_like(out)
    got = torch.autograd.grad((out * probe).sum(), (x, gate_up, down))
    want_out = _naive(x, gate_up, down, counts)
    want = torch.autograd.grad((want_out * probe).sum(), (x, gate_up, down))
    torch.testing.assert_close(out, want_out, atol=1e-5, rtol=1e-5)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_experts_default_to_auto():
    assert SwiGLUExperts(num_experts=E, hidden_size=H, intermediate_size=INTER).backend == backend.AUTO
