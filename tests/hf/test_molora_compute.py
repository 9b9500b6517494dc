"""Mo-LoRA's dense computation (all experts as one gated rank-E*r LoRA) against the sparse dispatch and loops."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from adamoe.hf.molora import inject_molora, load_molora, molora_modules, molora_parameters, save_molora
from adamoe.hf.molora_linear import DENSE_MAX_COLUMNS, MoLoRALinear, expert_gates, resolve_compute
from adamoe.hf.tiny import tiny_model
from adamoe.routing.base import Routing
from adamoe.stats import RoutingRecorder

E, M, K, R, IN, OUT = 4, 3, 3, 5, 12, 10
# token 0: all nulls (bypass); 1: one true pick; 2: two; 3: three; 4: one true + two nulls;
# 5: an empty (-1) slot beside a true pick and a null; 6: the same expert as token 5's, at another slot
INDICES = torch.tensor([[4, 5, 6], [0, 4, 5], [1, 2, 6], [0, 1, 3], [6, 3, 5], [-1, 2, 4], [5, 6, 2]])


def _module(compute: str, *, r: int = R) -> MoLoRALinear:
    torch.manual_seed(0)
    module = MoLoRALinear(
        base=torch.nn.Linear(IN, OUT), num_experts=E, num_null=M, top_k=K, rank=r, compute=compute
    )
    with torch.no_grad():
        module.lora_B.normal_(std=0.5)
    return module


def _routing(seed: int = 0) -> Routing:
    """Leaf weights (grad-able) that are exactly 0 on null and empty slots, as every router returns."""
    gen = torch.Generator().manual_seed(seed)
    weights = torch.where(INDICES.ge(0) & INDICES.lt(E), torch.rand(INDICES.shape, generator=gen), 0.0)
    probs = torch.softmax(torch.randn(INDICES.shape[0], E + M, generator=gen), dim=-1)
    return Routing(
        indices=INDICES,
        weights=weights.requires_grad_(True),
        probs=probs,
        logits=probs.log(),
        num_experts=E,
        num_null=M,
    )


def _naive_delta(module: MoLoRALinear, flat: torch.Tensor, routing: Routing) -> torch.Tensor:
    """Per token, per slot: scale * w * B_e A_e x for true picks only."""
    rows = []
    for t in range(flat.shape[0]):
        acc = torch.zeros(module.out_features)
        for j in range(routing.top_k):
            e = int(routing.indices[t, j])
            if 0 <= e < module.num_experts:
                w = routing.weights[t, j] * module.scaling
                acc = acc + w * (module.lora_B[e] @ (module.lora_A[e] @ flat[t]))
        rows.append(acc)
    return torch.stack(rows)


def _delta_and_grads(module: MoLoRALinear, fn) -> tuple[torch.Tensor, list[torch.Tensor]]:
    flat = torch.randn(INDICES.shape[0], IN, generator=torch.Generator().manual_seed(3), requires_grad=True)
    routing = _routing()
    delta = fn(module, flat, routing)
    probe = torch.randn(delta.shape, generator=torch.Generator().manual_seed(4))
    grads = torch.autograd.grad((delta * probe).sum(), [flat, module.lora_A, module.lora_B, routing.weights])
    return delta.detach(), list(grads)


def test_dense_equals_sparse_and_a_naive_loop_forward_and_backward():
    results = {
        "dense": _delta_and_grads(_module("dense"), MoLoRALinear.lora_delta),
        "sparse": _delta_and_grads(_module("sparse"), MoLoRALinear.lora_delta),
        "naive": _delta_and_grads(_module("dense"), _naive_delta),
    }
    dense_delta, dense_grads = results["dense"]
    assert torch.count_nonzero(dense_delta[0]) == 0  # the all-null token gets no update
    assert dense_grads[3][0].abs().max() == 0 and dense_grads[3][1].abs().max() > 0
    for other in ("sparse", "naive"):
        delta, grads = results[other]
        torch.testing.assert_close(dense_delta, delta, atol=1e-5, rtol=1e-5)
        for name, g, ref in zip(("x", "lora_A", "lora_B", "weights"), dense_grads, grads):
            torch.testing.assert_close(g, ref, atol=1e-5, rtol=1e-5, msg=f"{other} {name}")


def test_expert_gates_places_each_true_weight_in_its_expert_column():
    routing = _routing(seed=7)
    gates = expert_gates(routing)
    expected = torch.zeros(INDICES.shape[0], E)
    for t in range(INDICES.shape[0]):
        for j in range(K):
            e = int(INDICES[t, j])
            if 0 <= e < E:
                expected[t, e] += routing.weights[t, j].detach()
    assert gates.shape == (INDICES.shape[0], E)
    torch.testing.assert_close(gates.detach(), expected, atol=0, rtol=0)

    full = INDICES >= 0  # the fast form for top-k routings (no empty slot) agrees on the full rows
    topk_like = routing.select(full.all(dim=1))
    torch.testing.assert_close(
        expert_gates(topk_like, empty_slots=False), expert_gates(topk_like), atol=0, rtol=0
    )
    no_nulls = Routing(
        indices=INDICES[3:4], weights=routing.weights[3:4], probs=routing.probs[3:4, :E],
        logits=routing.logits[3:4, :E], num_experts=E,
    )  # fmt: skip
    torch.testing.assert_close(expert_gates(no_nulls, empty_slots=False), expected[3:4], atol=0, rtol=0)
    with pytest.raises(RuntimeError):  # an empty slot cannot pass silently through the fast form
        expert_gates(routing, empty_slots=False)


class _OpLog(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_dense_path_is_one_gemm_pair_without_dispatch_ops():
    module = _module("dense")
    flat, routing = torch.randn(INDICES.shape[0], IN), _routing()
    with FlopCounterMode(display=False) as counter:
        module.lora_delta(flat, routing)
    tokens, cols = INDICES.shape[0], E * R
    assert counter.get_total_flops() == 2 * tokens * (IN * cols + cols * OUT)  # every token, all experts

    with _OpLog() as log:
        module.lora_delta(flat, routing).square().sum().backward()
    dispatch_ops = {"sort", "index_select", "index_add", "bincount", "nonzero", "_local_scalar_dense"}
    assert not dispatch_ops & set(log.ops), log.ops
    with _OpLog() as sparse_log:  # the same probe sees them on the sparse path, so it can fail
        _module("sparse").lora_delta(flat, routing)
    assert {"sort", "index_select", "index_add"} <= set(sparse_log.ops)
    assert module.rows_processed == int((INDICES.ge(0) & INDICES.lt(E)).sum()) == 9


@pytest.mark.parametrize(
    ("experts", "rank", "expected"),
    [
        (4, 8, "dense"),
        (4, 16, "dense"),
        (8, 8, "dense"),
        (4, 17, "sparse"),
        (8, 64, "sparse"),
        (1, 65, "sparse"),
    ],
)
def test_auto_picks_dense_up_to_the_column_budget(experts, rank, expected):
    assert (experts * rank <= DENSE_MAX_COLUMNS) == (expected == "dense")
    assert resolve_compute("auto", num_experts=experts, rank=rank) == expected
    assert resolve_compute("sparse", num_experts=experts, rank=rank) == "sparse"
    assert resolve_compute("dense", num_experts=experts, rank=rank) == "dense"


def test_unknown_compute_is_a_one_line_error_naming_the_field():
    with pytest.raises(ValueError, match=r"^compute: expected one of \('auto', 'dense', 'sparse'\)"):
        _module("fast")
    with pytest.raises(ValueError, match=r"^compute:"):
        inject_molora(tiny_model("llama"), compute="fast")


def _model_run(compute: str) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
    model = inject_molora(tiny_model("llama"), num_null=2, top_k=3, compute=compute)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in molora_modules(model).values():
            module.lora_B.copy_(torch.randn(module.lora_B.shape, generator=gen) * 0.3)
    tokens = torch.randint(0, 100, (2, 9), generator=gen)
    with RoutingRecorder(model, baseline_k=2) as rec:
        out = model(tokens, labels=tokens)
    out.loss.backward()
    grads = {n: p.grad for n, p in molora_parameters(model).items()}
    return out.logits.detach(), grads, rec.summary()


def test_whole_model_dense_equals_sparse_with_the_same_routing_statistics():
    dense_logits, dense_grads, dense_stats = _model_run("dense")
    sparse_logits, sparse_grads, sparse_stats = _model_run("sparse")
    torch.testing.assert_close(dense_logits, sparse_logits, atol=1e-5, rtol=1e-5)
    assert dense_grads.keys() == sparse_grads.keys()
    for name in dense_grads:
        torch.testing.assert_close(dense_grads[name], sparse_grads[name], atol=1e-5, rtol=1e-4, msg=name)
    assert any(g.abs().max() > 0 for n, g in dense_grads.items() if n.endswith("router.weight"))
    assert dense_stats["load"] < 3
    for name, layer in dense_stats["layers"].items():  # the same picks; entropies equal to fp32 rounding
        ref = sparse_stats["layers"][name]
        assert layer["expert_counts"] == ref["expert_counts"] and layer["load"] == ref["load"], name
        assert layer["entropy"] == pytest.approx(ref["entropy"], rel=1e-5), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_module_forward_dense_equals_sparse_whatever_the_base_dtype(dtype):
    """fp32 bases take the fused ``addmm`` path, others add the fp32 update: both match sparse."""
    x = torch.randn(2, 6, IN, generator=torch.Generator().manual_seed(5)).to(dtype)
    outs = {}
    for compute in ("dense", "sparse"):
        module = _module(compute)
        module.base.to(dtype)
        outs[compute] = module(x)
        assert outs[compute].dtype == dtype
    assert (outs["dense"].float() - module.base(x).float()).abs().max() > 0.1  # the update is not tiny
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(outs["dense"], outs["sparse"], atol=tol, rtol=tol)


def test_compute_is_saved_loaded_and_switchable_on_a_live_module(tmp_path):
    model = inject_molora(tiny_model("llama"), targets=("q_proj",), compute="sparse")
    save_molora(model, tmp_path)
    loaded = load_molora(tiny_model("llama"), tmp_path)
    assert loaded.molora_config.compute == "sparse"
    module = next(iter(molora_modules(loaded).values()))
    assert module.resolved_compute == "sparse"
    module.compute = "auto"
    assert module.resolved_compute == "dense"  # E*r = 32 <= the budget
