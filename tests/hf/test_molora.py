"""Mo-LoRA injection on tiny Llama/Qwen2/Mistral models, checked against the base HF model and naive loops."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.utils.flop_counter import FlopCounterMode

from adamoe.hf.molora import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_WEIGHTS_FILE,
    DEFAULT_TARGETS,
    MoLoRAConfig,
    MoLoRALinear,
    count_parameters,
    inject_molora,
    load_molora,
    molora_modules,
    molora_parameters,
    save_molora,
)
from adamoe.hf.tiny import DENSE_FAMILIES, tiny_model
from adamoe.losses import null_aware_load_balance
from adamoe.routing.base import Routing
from adamoe.stats import RoutingRecorder, collect_routings

TOKENS = torch.tensor(
    [[5, 17, 99, 3, 64, 23, 8, 127, 45, 12, 77, 31], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]
)


@torch.no_grad()
def _logits(model, tokens: torch.Tensor = TOKENS) -> torch.Tensor:
    return model(tokens).logits


def _train_step(model, *, lr: float = 1e-2, aux: float = 0.0) -> None:
    """One AdamW step on the LM loss (+ null-aware aux loss): perturbs every adapter that got a gradient."""
    model.train()
    opt = torch.optim.AdamW(molora_parameters(model).values(), lr=lr)
    out = model(TOKENS, labels=TOKENS)
    loss = out.loss + aux * sum(
        null_aware_load_balance(r.probs, r.indices, num_experts=r.num_experts)
        for r in collect_routings(model)
    )
    loss.backward()
    opt.step()
    opt.zero_grad()
    model.eval()


def _randomize_b(model, std: float = 0.5, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in molora_modules(model).values():
            module.lora_B.copy_(torch.randn(module.lora_B.shape, generator=gen) * std)


# --------------------------------------------------------------------------------------------- init


@pytest.mark.parametrize("family", DENSE_FAMILIES)
def test_init_output_equals_base_model(family):
    base = tiny_model(family)
    model = inject_molora(tiny_model(family), num_null=2, top_k=3)
    assert len(molora_modules(model)) == len(DEFAULT_TARGETS) * 2
    assert (_logits(model) - _logits(base)).abs().max() <= 1e-6


@pytest.mark.parametrize("family", DENSE_FAMILIES)
def test_nonzero_b_changes_logits_so_the_equality_test_can_fail(family):
    base = tiny_model(family)
    model = inject_molora(tiny_model(family))
    _randomize_b(model, std=0.05)
    assert (_logits(model) - _logits(base)).abs().max() > 1e-3


def test_every_target_wraps_its_original_linear():
    original = tiny_model("qwen2")
    model = inject_molora(tiny_model("qwen2"), targets=("q_proj", "down_proj"))
    names = set(molora_modules(model))
    assert names == {f"model.layers.{i}.{p}" for i in range(2) for p in ("self_attn.q_proj", "mlp.down_proj")}
    wrapped = model.model.layers[1].self_attn.q_proj
    ref = original.model.layers[1].self_attn.q_proj
    assert torch.equal(wrapped.base.weight, ref.weight)
    assert torch.equal(wrapped.base.bias, ref.bias)  # Qwen2 q/k/v keep their bias
    assert type(model.model.layers[0].self_attn.k_proj) is torch.nn.Linear


def test_injection_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = inject_molora(tiny_model("llama"), seed=5)
    after = torch.rand(1)
    b = inject_molora(tiny_model("llama"), seed=5)
    c = inject_molora(tiny_model("llama"), seed=6)
    assert torch.equal(before, after)
    pa, pb, pc = molora_parameters(a), molora_parameters(b), molora_parameters(c)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not torch.equal(
        pa["model.layers.0.self_attn.q_proj.lora_A"], pc["model.layers.0.self_attn.q_proj.lora_A"]
    )


def test_new_modules_follow_the_model_train_mode():
    model = inject_molora(tiny_model("llama"), dropout=0.1)  # tiny_model is in eval mode
    assert all(not m.training for m in molora_modules(model).values())
    model.train()
    assert all(m.dropout.training for m in molora_modules(model).values())


# ------------------------------------------------------------------------------------ parameters


def test_only_adapter_params_are_trainable_and_counted(capsys):
    base_total = sum(p.numel() for p in tiny_model("llama").parameters())
    e, m, r = 4, 3, 8
    model = inject_molora(tiny_model("llama"), num_experts=e, num_null=m, top_k=2, rank=r)
    trainable_names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable_names == set(molora_parameters(model))
    assert all(n.endswith((".router.weight", ".lora_A", ".lora_B")) for n in trainable_names)

    # hand count: per target (in, out) a router (E+m)*in, A E*r*in, B E*out*r; 2 layers
    h, inter = 32, 64
    q_out, kv_out = 32, 2 * 8  # 4 heads of 8, 2 kv heads
    shapes = [(h, q_out), (h, kv_out), (h, kv_out), (q_out, h), (h, inter), (h, inter), (inter, h)]
    expected = 2 * sum((e + m) * i + e * r * i + e * o * r for i, o in shapes)
    trainable, total = count_parameters(model)
    assert (trainable, total) == (expected, base_total + expected)
    line = capsys.readouterr().out.strip()
    assert line == (
        f"trainable params: {expected:,} || all params: {base_total + expected:,} || "
        f"trainable%: {100 * expected / (base_total + expected):.4f}"
    )
    count_parameters(model, verbose=False)
    assert capsys.readouterr().out == ""


def test_only_adapters_receive_gradients():
    model = inject_molora(tiny_model("llama"), num_null=2, top_k=3)
    model.train()
    params = molora_parameters(model)
    opt = torch.optim.AdamW(params.values(), lr=1e-2)

    def backward() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(TOKENS, labels=TOKENS)
        aux = sum(
            null_aware_load_balance(r.probs, r.indices, num_experts=r.num_experts)
            for r in collect_routings(model)
        )
        (out.loss + 0.01 * aux).backward()

    backward()
    for name, p in model.named_parameters():
        if name not in params:
            assert p.grad is None, name
    for prefix in molora_modules(model):
        # B = 0 at init: the LM loss reaches B only; A's gradient is exactly zero; the router learns from aux.
        assert params[f"{prefix}.lora_B"].grad.abs().max() > 0, prefix
        assert torch.count_nonzero(params[f"{prefix}.lora_A"].grad) == 0, prefix
        assert params[f"{prefix}.router.weight"].grad.abs().max() > 0, prefix
    opt.step()

    backward()  # B != 0 now: A and the router receive LM gradients too
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().max() > 0, name
    assert all(p.grad is None for n, p in model.named_parameters() if n not in params)


# ------------------------------------------------------------------------------------ save / load


@pytest.mark.parametrize("family", DENSE_FAMILIES)
def test_save_load_round_trip_gives_identical_logits(family, tmp_path):
    base_logits = _logits(tiny_model(family))
    model = inject_molora(tiny_model(family), num_null=3, top_k=3, rank=4, alpha=8)
    _train_step(model)
    trained = _logits(model)
    assert (trained - base_logits).abs().max() > 1e-4  # the step really perturbed the adapters

    save_molora(model, tmp_path / "adapter")
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == sorted(
        [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]
    )  # no temp files left behind
    stored = load_file(tmp_path / "adapter" / ADAPTER_WEIGHTS_FILE)
    assert set(stored) == set(molora_parameters(model))  # adapter params only, no base weights

    loaded = load_molora(tiny_model(family), tmp_path / "adapter")
    assert loaded.molora_config == model.molora_config
    torch.testing.assert_close(_logits(loaded), trained, atol=0, rtol=0)
    assert {n for n, p in loaded.named_parameters() if p.requires_grad} == set(stored)


def test_saved_config_records_the_injection_settings(tmp_path):
    model = inject_molora(
        tiny_model("mistral"), targets=("v_proj", "up_proj"), num_null=5, top_k=2, normalize=1
    )
    save_molora(model, tmp_path)
    data = json.loads((tmp_path / ADAPTER_CONFIG_FILE).read_text())
    assert data["architecture"] == "MistralForCausalLM"
    assert data["molora"] == {
        "targets": ["v_proj", "up_proj"],
        "num_experts": 4,
        "num_null": 5,
        "top_k": 2,
        "rank": 8,
        "alpha": 16.0,
        "dropout": 0.0,
        "null_type": "zero",
        "normalize": 1,
        "seed": 0,
        "compute": "auto",
    }
    assert model.molora_config.name == "m5k2"


@pytest.fixture()
def saved(tmp_path):
    model = inject_molora(tiny_model("llama"), targets=("q_proj",), num_null=1)
    save_molora(model, tmp_path)
    return tmp_path


def _one_line_error(fn, match: str) -> str:
    with pytest.raises(ValueError, match=match) as err:
        fn()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_load_errors_on_missing_files(saved):
    _one_line_error(lambda: load_molora(tiny_model("llama"), saved / "nowhere"), ADAPTER_CONFIG_FILE)
    (saved / ADAPTER_WEIGHTS_FILE).unlink()
    _one_line_error(lambda: load_molora(tiny_model("llama"), saved), ADAPTER_WEIGHTS_FILE)


def test_load_checks_keys_strictly(saved):
    tensors = load_file(saved / ADAPTER_WEIGHTS_FILE)
    dropped = dict(tensors)
    gone = dropped.pop("model.layers.1.self_attn.q_proj.lora_B")
    save_file(dropped, saved / ADAPTER_WEIGHTS_FILE)
    msg = _one_line_error(lambda: load_molora(tiny_model("llama"), saved), "missing")
    assert "model.layers.1.self_attn.q_proj.lora_B" in msg

    save_file({**tensors, "model.layers.0.mlp.up_proj.lora_A": gone.clone()}, saved / ADAPTER_WEIGHTS_FILE)
    msg = _one_line_error(lambda: load_molora(tiny_model("llama"), saved), "unexpected")
    assert "model.layers.0.mlp.up_proj.lora_A" in msg


def test_load_checks_shapes_and_architecture(saved):
    _one_line_error(lambda: load_molora(tiny_model("qwen2"), saved), "saved for LlamaForCausalLM")
    cfg = json.loads((saved / ADAPTER_CONFIG_FILE).read_text())
    cfg["molora"]["rank"] = 4
    (saved / ADAPTER_CONFIG_FILE).write_text(json.dumps(cfg))
    _one_line_error(lambda: load_molora(tiny_model("llama"), saved), "has shape")


def test_load_rejects_unknown_settings(saved):
    cfg = json.loads((saved / ADAPTER_CONFIG_FILE).read_text())
    cfg["molora"]["experts"] = 4
    (saved / ADAPTER_CONFIG_FILE).write_text(json.dumps(cfg))
    _one_line_error(lambda: load_molora(tiny_model("llama"), saved), "unknown key.*experts; valid keys")


# ---------------------------------------------------------------------------------------- errors


def test_unsupported_architecture_lists_the_supported_ones():
    msg = _one_line_error(lambda: inject_molora(tiny_model("mixtral")), "MixtralForCausalLM")
    assert "LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM" in msg


def test_unknown_target_is_named():
    _one_line_error(lambda: inject_molora(tiny_model("llama"), targets=("q_proj", "qkv_proj")), "'qkv_proj'")


def test_target_that_is_not_a_linear_is_rejected():
    _one_line_error(lambda: inject_molora(tiny_model("llama"), targets=("mlp",)), "expected nn.Linear")


def test_double_injection_is_rejected():
    model = inject_molora(tiny_model("llama"))
    _one_line_error(lambda: inject_molora(model), "already has Mo-LoRA adapters")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"top_k": 7, "num_null": 2}, "top_k"),
        ({"rank": 0}, "rank"),
        ({"num_experts": 0}, "num_experts"),
        ({"num_null": -1}, "num_null"),
        ({"null_type": "identity"}, "null_type"),
        ({"normalize": 3}, "normalize"),
        ({"dropout": 1.0}, "dropout"),
        ({"alpha": 0}, "alpha"),
        ({"targets": ()}, "targets"),
    ],
)
def test_impossible_settings_name_the_field(kwargs, field):
    model = tiny_model("llama")
    _one_line_error(lambda: inject_molora(model, **kwargs), f"^{field}:")
    assert not molora_modules(model)  # nothing was replaced


def test_config_validate_standalone():
    assert MoLoRAConfig(num_null=7, top_k=4).validate().name == "m7k4"
    with pytest.raises(ValueError, match=r"^top_k:"):
        MoLoRAConfig(num_experts=2, top_k=3).validate()


# -------------------------------------------------------------------------------- routing / stats


def test_recorder_sees_every_module_and_load_is_k_without_nulls():
    model = inject_molora(tiny_model("llama"), num_null=0, top_k=2)
    with RoutingRecorder(model, baseline_k=2) as rec:
        _logits(model)
    summary = rec.summary()
    assert set(summary["layers"]) == set(molora_modules(model))
    assert all(s["load"] == 2.0 for s in summary["layers"].values())
    assert summary["bypass_rate"] == 0.0


@pytest.mark.parametrize("compute", ["dense", "sparse"])
def test_null_experts_lower_the_load_and_the_lora_work(compute):
    k = 2
    model = inject_molora(tiny_model("qwen2"), num_null=4, top_k=k, compute=compute)
    with RoutingRecorder(model, baseline_k=k) as rec:
        _logits(model)
    summary = rec.summary()
    tokens = TOKENS.numel()
    for name, module in molora_modules(model).items():
        layer = rec.layers[name]
        assert layer.tokens == tokens
        assert layer.load <= k
        assert layer.null_slots + layer.true_slots == tokens * k
        assert module.rows_processed == layer.true_slots  # the true slots: the LoRA rows the load counts
    assert summary["load"] < k
    assert sum(rec.layers[n].null_slots for n in rec.layers) > 0
    assert summary["flops_reduction_pct"] > 0


def test_routing_is_graph_attached_and_published_to_callbacks():
    model = inject_molora(tiny_model("llama"), targets=("o_proj",), num_null=1, top_k=2)
    module = model.model.layers[0].self_attn.o_proj
    seen: list[Routing] = []
    module.routing_callbacks.append(lambda mod, routing: seen.append(routing))
    model.train()
    model(TOKENS)
    assert len(seen) == 1 and seen[0] is module.last_routing
    assert seen[0].probs.requires_grad
    assert (seen[0].num_experts, seen[0].num_null, seen[0].top_k) == (4, 1, 2)


# ------------------------------------------------------------------------------- module compute


def _module(*, in_f=12, out_f=10, e=4, m=0, k=2, r=3, normalize=2, bias=True, compute="auto") -> MoLoRALinear:
    base = torch.nn.Linear(in_f, out_f, bias=bias)
    module = MoLoRALinear(
        base=base,
        num_experts=e,
        num_null=m,
        top_k=k,
        rank=r,
        alpha=6.0,
        normalize=normalize,
        compute=compute,
    )
    with torch.no_grad():
        module.lora_B.normal_(std=0.5)
        module.router.weight.normal_(std=1.0)
    return module


def _reference(module: MoLoRALinear, x: torch.Tensor, normalize: int) -> torch.Tensor:
    """Per-token, per-pick loop with routing recomputed by hand from the router weight."""
    e = module.num_experts
    flat = x.reshape(-1, module.in_features)
    rows = []
    for t in range(flat.shape[0]):
        xt = flat[t]
        probs = torch.softmax(module.router.weight @ xt, dim=-1)
        top = torch.topk(probs, module.top_k)
        picks = list(zip(top.indices.tolist(), top.values))
        true_mass = sum(p for i, p in picks if i < e)
        all_mass = sum(p for _, p in picks)
        acc = module.base.weight @ xt + module.base.bias
        for i, p in picks:
            if i >= e:
                continue  # zero null: no update
            w = p / true_mass if normalize == 2 else (p / all_mass if normalize == 1 else p)
            acc = acc + w * module.scaling * (module.lora_B[i] @ (module.lora_A[i] @ xt))
        rows.append(acc)
    return torch.stack(rows).reshape(*x.shape[:-1], module.out_features)


@pytest.mark.parametrize("compute", ["dense", "sparse"])
@pytest.mark.parametrize(("m", "k", "normalize"), [(0, 2, 2), (3, 3, 2), (3, 3, 1), (2, 2, 0), (0, 1, 2)])
def test_output_and_gradients_match_a_per_token_loop(m, k, normalize, compute):
    module = _module(m=m, k=k, normalize=normalize, compute=compute)
    assert module.resolved_compute == compute
    x = torch.randn(2, 7, 12, requires_grad=True)
    out = module(x)
    ref = _reference(module, x, normalize)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)

    wrt = [x, module.lora_A, module.lora_B, module.router.weight]
    grads = torch.autograd.grad(out.square().sum(), wrt)
    ref_grads = torch.autograd.grad(ref.square().sum(), wrt)
    for g, rg in zip(grads, ref_grads):
        torch.testing.assert_close(g, rg, atol=1e-4, rtol=1e-4)


def test_null_slots_do_no_lora_work():
    e, r, in_f, out_f = 4, 3, 12, 10
    module = _module(in_f=in_f, out_f=out_f, e=e, m=3, k=3, r=r, compute="sparse")
    flat = torch.randn(5, in_f)
    # token 0: all nulls (bypass); 1: one true pick; 2: two; 3: three; 4: one true + two nulls
    indices = torch.tensor([[4, 5, 6], [0, 4, 5], [1, 2, 6], [0, 1, 3], [6, 3, 5]])
    weights = torch.where(indices < e, torch.rand(5, 3), torch.zeros(5, 3))
    probs = torch.softmax(torch.randn(5, e + 3), dim=-1)
    routing = Routing(
        indices=indices, weights=weights, probs=probs, logits=probs.log(), num_experts=e, num_null=3
    )
    true_slots = int((indices < e).sum())

    with FlopCounterMode(display=False) as counter:
        delta = module.lora_delta(flat, routing)
    assert module.rows_processed == true_slots == 7
    # every matmul FLOP is LoRA work on a true slot: 2 * rows * (in*r + r*out); null slots add none
    assert counter.get_total_flops() == 2 * true_slots * (in_f * r + r * out_f)
    assert torch.count_nonzero(delta[0]) == 0  # the all-null token gets no update

    expected = torch.zeros(5, out_f)
    for t in range(5):
        for j in range(3):
            i = int(indices[t, j])
            if i < e:
                expected[t] += (
                    weights[t, j] * module.scaling * (module.lora_B[i] @ module.lora_A[i] @ flat[t])
                )
    torch.testing.assert_close(delta, expected.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("compute", ["dense", "sparse"])
def test_all_null_routing_returns_the_base_output(compute):
    module = _module(m=2, k=1, compute=compute)
    u = F.normalize(torch.randn(12), dim=0)
    with torch.no_grad():
        module.router.weight.zero_()
        module.router.weight[4] = 100.0 * u  # null expert 4 wins for every input aligned with u
    x = 3.0 * u + 0.01 * torch.randn(6, 12)
    out = module(x)
    assert module.last_routing.load() == 0.0
    assert module.rows_processed == 0
    torch.testing.assert_close(out, module.base(x), atol=0, rtol=0)


# ------------------------------------------------------------------------------------ generation


def test_cached_generation_matches_uncached():
    model = inject_molora(tiny_model("llama"), num_null=2, top_k=2)
    _randomize_b(model, std=0.05)
    prompt = TOKENS[:1, :5]
    kwargs = {"max_new_tokens": 5, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        cached = model.generate(prompt, use_cache=True, **kwargs)
        uncached = model.generate(prompt, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)
    assert cached.shape[1] == 10
