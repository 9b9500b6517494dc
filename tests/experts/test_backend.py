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
    # Where torch._grouped_mm does not fit (fp32 on CUDA or compiled): the per-expert kernel.
    assert backend.rule_backend("cuda", grouped_mm=False).backend == "grouped"
    assert backend.rule_backend("cpu", compiling=True, grouped_mm=False).backend == "grouped"


def test_grouped_mm_fits_bf16_only_when_compiled_any_dtype_in_cpu_eager():
    fp32, bf16 = torch.zeros(E, 2 * INTER, H), torch.zeros(E, 2 * INTER, H, dtype=torch.bfloat16)
    assert backend.grouped_mm_fits(fp32, compiling=False) and backend.grouped_mm_fits(bf16, compiling=False)
    assert backend.grouped_mm_fits(bf16, compiling=True)
    assert not backend.grouped_mm_fits(fp32, compiling=True)  # inductor: "Expected inputs of BF16 type"


def test_grouped_mm_is_not_taken_on_cpu_below_the_torch_floor(monkeypatch):
    fp32 = torch.zeros(E, 2 * INTER, H)
    monkeypatch.setattr(torch, "__version__", "2.8.0+cpu")  # _grouped_mm exists there, without a CPU kernel
    assert not backend.grouped_mm_fits(fp32, compiling=False)


def test_pyproject_torch_floor_is_the_grouped_mm_floor_and_admits_the_tested_pin():
    """pyproject.toml's floor is what the experts' grouped GEMM needs, and the CI pin lies in the range."""
    from pathlib import Path

    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parents[2]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(r for r in map(Requirement, deps) if r.name == "torch").specifier
    floors = [s.version for s in spec if s.operator == ">="]
    assert floors == [".".join(map(str, backend.TORCH_FLOOR))], floors
    pins = [
        line.split("==")[1]
        for line in (root / "scripts" / "constraints.txt").read_text().splitlines()
        if line.startswith("torch==")
    ]
    assert pins == ["2.13.0"] and spec.contains(pins[0])
    assert not spec.contains("2.8.0")
    # The CPU kernel the floor stands for, in the installed torch: rows of 2 experts through (2, 4, 4).
    rows, weight = torch.randn(8, 4), torch.randn(2, 4, 4)
    offs = torch.tensor([3, 8], dtype=torch.int32)
    want = torch.cat([rows[:3] @ weight[0], rows[3:] @ weight[1]])
    torch.testing.assert_close(torch._grouped_mm(rows, weight, offs=offs), want)


def _moe_grads(layer: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Output, input gradient and every parameter gradient of ``sum(out**2)``, in fp32."""
    x = x.detach().clone().requires_grad_(True)
    out = layer(x)
    out = out[0] if isinstance(out, tuple) else out
    out.float().square().sum().backward()
    return [out.detach().float(), x.grad.float(), *(p.grad.float() for p in layer.parameters())]


@pytest.mark.slow
def test_compiled_moe_layer_matches_eager_in_fp32_and_bf16():
    """torch.compile(MoELayer) forward + backward: fp32 equals eager (it crashed when the compile rule
    sent fp32 to torch._grouped_mm); bf16 (through torch._grouped_mm) is as close to the fp32 reference
    as eager bf16 is."""
    import copy

    from adamoe.config import ExpertsConfig, MoEConfig, RouterConfig

    torch.manual_seed(0)
    config = MoEConfig(
        hidden_size=32,
        router=RouterConfig(num_experts=4, num_null=2, top_k=2),
        experts=ExpertsConfig(intermediate_size=32),
    )
    layer, x = config.build(), torch.randn(2, 16, 32)
    compiled = _moe_grads(torch.compile(copy.deepcopy(layer)), x)  # first: no eager choice cached yet
    ref = _moe_grads(copy.deepcopy(layer), x)
    for got, want in zip(compiled, ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    bf16 = copy.deepcopy(layer).to(torch.bfloat16)
    eager = _moe_grads(copy.deepcopy(bf16), x.bfloat16())
    compiled = _moe_grads(torch.compile(bf16), x.bfloat16())
    for got, base, want in zip(compiled, eager, ref, strict=True):
        assert (got - want).abs().max() <= 2 * (base - want).abs().max() + 1e-3


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
