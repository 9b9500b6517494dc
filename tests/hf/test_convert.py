"""Null experts for transformers MoE-LLMs: exactness at m = 0 against the original HF model, routing and
block outputs against naive per-token references, null slots costing no expert rows, and errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.nn import functional as F

import adamoe.hf
from adamoe.hf import experts_impl
from adamoe.hf.convert import AdaMoERouter, convert, routers
from adamoe.hf.families import FAMILY_SPECS, SUPPORTED
from adamoe.hf.tiny import MOE_FAMILIES, tiny_model
from adamoe.losses import routing_aux_loss
from adamoe.stats import RoutingRecorder, collect_routings

TOKENS = torch.tensor([[5, 17, 99, 3, 64, 23, 8, 41, 77, 12], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
E, K = 4, 2  # every tiny MoE family: 4 experts, top-2

# Each family plus the config switches that change its routing rule.
VARIANTS = [
    ("mixtral", {}),
    ("qwen2_moe", {}),
    ("qwen2_moe", {"norm_topk_prob": True}),
    ("qwen3_moe", {}),
    ("qwen3_moe", {"norm_topk_prob": True}),
    ("olmoe", {}),
    ("olmoe", {"norm_topk_prob": True}),
    ("deepseek_v2", {"routed_scaling_factor": 2.0}),
    ("deepseek_v2", {"topk_method": "group_limited_greedy", "n_group": 2, "topk_group": 1}),
    ("deepseek_v3", {}),
    ("deepseek_v3", {"n_group": 2, "topk_group": 1, "routed_scaling_factor": 2.5}),
    ("deepseek_v3", {"norm_topk_prob": False}),
]
VARIANT_IDS = [f"{f}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for f, o in VARIANTS]
SOFTMAX_GREEDY = ["mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2"]


def logits_of(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(TOKENS).logits


def first_block(model: torch.nn.Module) -> torch.nn.Module:
    return model.model.layers[0].mlp


# --- m = 0 reproduces the original model -------------------------------------------------------------


def test_supported_families_are_the_tiny_moe_families():
    assert set(SUPPORTED) == set(MOE_FAMILIES)


@pytest.mark.parametrize(("family", "overrides"), VARIANTS, ids=VARIANT_IDS)
def test_m0_with_original_k_reproduces_the_original_logits(family, overrides):
    model = tiny_model(family, **overrides)
    original = copy.deepcopy(model)
    convert(model, null_experts=0)
    assert model.config._experts_implementation == "adamoe"
    assert isinstance(first_block(model).gate, AdaMoERouter)
    diff = (logits_of(model) - logits_of(original)).abs().max().item()
    assert diff <= 1e-6


@pytest.mark.parametrize("family", ["mixtral", "deepseek_v3"])
@pytest.mark.parametrize("normalize", [1, 2])
def test_m0_is_exact_under_both_options_for_renormalising_families(family, normalize):
    model = tiny_model(family)
    original = copy.deepcopy(model)
    convert(model, null_experts=0, normalize=normalize)
    assert (logits_of(model) - logits_of(original)).abs().max().item() <= 1e-6


def test_m0_renormalising_a_raw_family_changes_it():
    """Qwen2-MoE keeps raw probabilities (norm_topk_prob=False); forcing option 2 must show."""
    model = tiny_model("qwen2_moe")
    original = copy.deepcopy(model)
    convert(model, null_experts=0, normalize=2)
    assert (logits_of(model) - logits_of(original)).abs().max().item() > 1e-3


def test_state_dict_keeps_every_original_key_and_adds_gate2():
    model = tiny_model("deepseek_v3")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    convert(model, null_experts=3, top_k=3)
    after = model.state_dict()
    assert set(before) <= set(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
    added = sorted(set(after) - set(before))
    assert added == sorted(
        f"model.layers.{i}.mlp.gate.{name}"
        for i in range(2)
        for name in ("gate2", "null_score_correction_bias")
    )
    assert after["model.layers.0.mlp.gate.gate2"].shape == (3, 32)


# --- routing and block outputs vs naive references ---------------------------------------------------


def softmax_list(row: list[float]) -> list[float]:
    top = max(row)
    ex = [math.exp(v - top) for v in row]
    return [v / sum(ex) for v in ex]


def naive_route(router: AdaMoERouter, hidden: torch.Tensor, *, normalize: int, null_type: str, scale: float):
    """Per-token float64 reference of softmax top-k over E+m: list of {expert: weight}.

    ``normalize=0`` with nulls: option-2 weights times the mass of the original top-K over the E true
    experts alone (the raw-weight rule), so the true weights keep the unconverted model's scale."""
    weight = torch.cat([router.weight, router.gate2]).double()
    picks = []
    for row in (hidden.double() @ weight.T).tolist():
        p = softmax_list(row)
        order = sorted(range(len(p)), key=lambda i: -p[i])[: router.top_k]
        contributes = {i: i < router.num_experts or null_type == "identity" for i in order}
        pool = [i for i in order if contributes[i]] if normalize != 1 else order
        denom = sum(p[i] for i in pool)
        w = {i: (p[i] / denom if contributes[i] and denom > 0 else 0.0) for i in order}
        if normalize == 0:
            original = sorted(softmax_list(row[: router.num_experts]), reverse=True)[:K]
            w = {i: v * sum(original) for i, v in w.items()}
        picks.append({i: v * scale for i, v in w.items()})
    return picks


def naive_routed_output(
    experts: torch.nn.Module, hidden: torch.Tensor, picks, null_type: str
) -> torch.Tensor:
    rows = []
    for x, chosen in zip(hidden.double(), picks):
        acc = torch.zeros_like(x)
        for e, w in chosen.items():
            if e < experts.num_experts:
                g, u = (experts.gate_up_proj[e].double() @ x).chunk(2)
                acc = acc + w * (experts.down_proj[e].double() @ (F.silu(g) * u))
            elif null_type == "identity":
                acc = acc + w * x
        rows.append(acc)
    return torch.stack(rows)


def shared_output(block: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    if hasattr(block, "shared_expert"):  # Qwen2-MoE: sigmoid-gated shared expert
        return torch.sigmoid(block.shared_expert_gate(hidden)) * block.shared_expert(hidden)
    if hasattr(block, "shared_experts"):  # DeepSeek
        return block.shared_experts(hidden)
    return torch.zeros_like(hidden)


@pytest.mark.parametrize("family", SOFTMAX_GREEDY)
@pytest.mark.parametrize("normalize", [0, 1, 2])
@pytest.mark.parametrize("null_type", ["zero", "identity"])
def test_block_output_matches_naive_reference(family, normalize, null_type):
    overrides = {"routed_scaling_factor": 1.5} if family == "deepseek_v2" else {}
    model = tiny_model(family, **overrides)
    convert(
        model, null_experts=3, top_k=3, normalize=normalize, null_type=null_type, gate2_init="random", seed=1
    )
    block = first_block(model)
    hidden = torch.randn(1, 24, 32)
    with torch.no_grad():
        out = block(hidden.clone())
        routing = block.gate.last_routing
        flat = hidden.reshape(-1, 32)
        picks = naive_route(
            block.gate,
            flat,
            normalize=normalize,
            null_type=null_type,
            scale=overrides.get("routed_scaling_factor", 1.0),
        )
        expected = (
            naive_routed_output(block.experts, flat, picks, null_type) + shared_output(block, flat).double()
        )
    got_picks = [
        {int(e): float(w) for e, w in zip(i, ws)}
        for i, ws in zip(routing.indices.tolist(), routing.weights.tolist())
    ]
    for got, want in zip(got_picks, picks):
        assert got.keys() == want.keys()
        assert all(abs(got[e] - want[e]) < 1e-5 for e in want)
    assert torch.allclose(out.reshape(-1, 32).double(), expected, atol=1e-5)
    assert any(max(p) >= E for p in got_picks)  # nulls were actually picked


def test_deepseek_v3_group_limit_binds_true_experts_only():
    """Nulls are eligible whatever groups a token's true experts are limited to."""
    model = tiny_model("deepseek_v3", n_group=2, topk_group=1)
    convert(model, null_experts=2, top_k=3, gate2_init="random")
    block = first_block(model)
    hidden = torch.randn(1, 64, 32)
    with torch.no_grad():
        block(hidden)
    idx = block.gate.last_routing.indices
    true_groups = [{e // 2 for e in row if e < E} for row in idx.tolist()]
    assert all(len(g) <= 1 for g in true_groups)  # one group of 2 true experts per token
    assert all(len(row) == 3 for row in idx.tolist())  # k = 3 > 2 eligible true: nulls fill in
    assert (idx >= E).sum(dim=-1).min() >= 1


# --- adaptive routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", MOE_FAMILIES)
def test_nulls_change_routing_and_load_falls_below_k(family):
    model = tiny_model(family)
    original = copy.deepcopy(model)
    convert(model, null_experts=4, top_k=3, gate2_init="random")
    with RoutingRecorder(model, baseline_k=3) as rec:
        logits = logits_of(model)
    summary = rec.summary()
    assert len(summary["layers"]) == 2
    assert 0 < summary["load"] < 3
    assert all(s["null_slots_per_token"] > 0 for s in summary["layers"].values())
    assert (logits - logits_of(original)).abs().max() > 1e-3


def test_copy_init_spreads_routing_evenly_over_true_and_null_experts():
    """gate2 = gate rows cyclically: every null is the twin of a true expert, so top-4 over 4+4 takes the
    two best true experts and their twins: load exactly k*E/(E+m) = 2 and every null gets picked."""
    model = tiny_model("mixtral")
    convert(model, null_experts=4, top_k=4, gate2_init="copy")
    assert torch.equal(first_block(model).gate.gate2, first_block(model).gate.weight)
    with RoutingRecorder(model) as rec:
        logits_of(model)
    for stats in rec.summary()["layers"].values():
        assert stats["load"] == 2.0
        assert all(c > 0 for c in stats["expert_counts"][E:])


def test_default_gate2_init_breaks_the_twin_ties():
    """The default init is copy_jitter: each null row is its twin's plus a small jitter, so no null logit
    equals its twin's on any token (plain copy ties all of them and leaves routing to topk's tie-break)."""
    model = tiny_model("mixtral")
    convert(model, null_experts=4, top_k=4)
    gate = first_block(model).gate
    hidden = torch.randn(64, gate.weight.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        twins, nulls = hidden @ gate.weight.T, hidden @ gate.gate2.T
    assert not torch.equal(gate.gate2, gate.weight)
    assert (twins != nulls).all()
    torch.testing.assert_close(nulls, twins, rtol=0, atol=0.2 * float(twins.abs().max()))


@pytest.mark.parametrize("how", ["zeros", "mean"])
def test_gate2_init_zeros_and_mean(how):
    model = tiny_model("olmoe")
    convert(model, null_experts=3, top_k=3, gate2_init=how)
    router = first_block(model).gate
    want = torch.zeros(3, 32) if how == "zeros" else router.weight.mean(dim=0).expand(3, -1)
    assert torch.allclose(router.gate2, want)


def test_random_gate2_init_is_seeded():
    def gate2(seed: int) -> torch.Tensor:
        model = convert(tiny_model("qwen3_moe"), null_experts=2, top_k=3, gate2_init="random", seed=seed)
        return first_block(model).gate.gate2.detach()

    assert torch.equal(gate2(3), gate2(3))
    assert not torch.equal(gate2(3), gate2(4))


def test_option2_keeps_vanilla_scale_and_all_null_tokens_bypass():
    """Option 2: weights over the chosen true experts sum to 1 (as in vanilla top-k); a token whose picks
    are all zero-nulls gets zero output. Option 1 spreads the mass over nulls too."""
    hidden = torch.zeros(2, 32)
    hidden[0, 0], hidden[1, 0] = 1.0, -1.0  # token 0 prefers the nulls, token 1 the true experts

    def routed(normalize: int) -> tuple[torch.Tensor, torch.Tensor]:
        model = tiny_model("mixtral")
        convert(model, null_experts=2, top_k=2, normalize=normalize)
        block = first_block(model)
        with torch.no_grad():
            block.gate.weight.zero_()
            block.gate.weight[0, 1] = 5.0  # expert 0 gets a small edge when it sees dimension 1
            block.gate.gate2.zero_()
            block.gate.gate2[:, 0] = 10.0
            out = block(hidden.clone().unsqueeze(0)).squeeze(0)
        return out, block.gate.last_routing

    out, routing = routed(2)
    assert (routing.indices[0] >= E).all() and torch.all(out[0] == 0)  # all-null: bypass
    assert (routing.indices[1] < E).all() and routing.weights[1].sum().item() == pytest.approx(1.0)

    mixed = torch.randn(64, 32)
    for normalize, true_sum_is_one in ((2, True), (1, False)):
        model = convert(
            tiny_model("mixtral"), null_experts=4, top_k=3, normalize=normalize, gate2_init="random"
        )
        with torch.no_grad():
            first_block(model)(mixed.unsqueeze(0))
        routing = first_block(model).gate.last_routing
        true = routing.true_mask()
        some_true = true.any(dim=-1)
        true_sum = (routing.weights * true).sum(dim=-1)[some_true]
        has_null = routing.null_mask().any(dim=-1)[some_true]
        assert torch.allclose(true_sum, torch.ones_like(true_sum)) == true_sum_is_one
        assert has_null.any()
        if normalize == 1:
            assert (true_sum[has_null] < 1 - 1e-6).all()


def test_identity_nulls_pass_the_token_through():
    model = tiny_model("mixtral")
    convert(model, null_experts=2, top_k=2, null_type="identity")
    block = first_block(model)
    with torch.no_grad():
        block.gate.weight.zero_()
        block.gate.gate2.zero_()
        block.gate.gate2[:, 0] = 10.0
        x = torch.zeros(1, 1, 32)
        x[0, 0, 0] = 1.0
        out = block(x.clone())
    assert (block.gate.last_routing.indices >= E).all()
    assert torch.allclose(out, x)  # two identity nulls with weights summing to 1


# --- null slots do no expert work ------------------------------------------------------------------


@pytest.mark.parametrize("family", MOE_FAMILIES)
def test_null_slots_do_no_expert_work(family, monkeypatch):
    rows_seen: list[int] = []
    real = experts_impl.grouped_swiglu

    def counting(rows, gate_up, down, counts):
        assert sum(counts) == rows.shape[0]
        rows_seen.append(rows.shape[0])
        return real(rows, gate_up, down, counts)

    monkeypatch.setattr(experts_impl, "grouped_swiglu", counting)
    model = convert(tiny_model(family), null_experts=4, top_k=3, gate2_init="random")
    for _, block in [(n, m) for n, m in model.named_modules() if hasattr(m, "experts")]:
        assert experts_impl.uses_fused_swiglu(block.experts)  # every family is SiLU-gated: fast path
    with RoutingRecorder(model) as rec:
        logits_of(model)
    true_slots = [s["load"] * s["tokens"] for s in rec.summary()["layers"].values()]
    assert rows_seen == pytest.approx(true_slots)
    assert sum(rows_seen) < TOKENS.numel() * 3 * 2  # fewer rows than the k * tokens * layers slots


def test_non_silu_experts_fall_back_to_a_loop_that_also_skips_nulls():
    model = tiny_model("mixtral", hidden_act="gelu")
    original = copy.deepcopy(model)
    convert(model, null_experts=0)
    experts = first_block(model).experts
    assert not experts_impl.uses_fused_swiglu(experts)
    assert (logits_of(model) - logits_of(original)).abs().max().item() <= 1e-6

    model = convert(tiny_model("mixtral", hidden_act="gelu"), null_experts=3, top_k=3, gate2_init="random")
    block = first_block(model)
    gated_rows: list[int] = []
    block.experts.act_fn.register_forward_hook(lambda mod, args, out: gated_rows.append(args[0].shape[0]))
    hidden = torch.randn(1, 20, 32)
    with torch.no_grad():
        out = block(hidden.clone()).reshape(-1, 32)
    routing = block.gate.last_routing
    assert sum(gated_rows) == int(routing.true_mask().sum()) < routing.indices.numel()
    expected = torch.zeros(20, 32)
    for t, (idx, ws) in enumerate(zip(routing.indices, routing.weights)):
        for e, w in zip(idx.tolist(), ws):
            if e < E:
                g, u = (block.experts.gate_up_proj[e] @ hidden[0, t]).chunk(2)
                expected[t] += w * (block.experts.down_proj[e] @ (F.gelu(g) * u))
    assert torch.allclose(out, expected, atol=1e-5)


# --- training, statistics, config -----------------------------------------------------------------


def test_gradients_reach_gate_through_weights_and_gate2_through_option1_or_aux_loss():
    model = convert(tiny_model("mixtral"), null_experts=4, top_k=3, normalize=2, gate2_init="random")
    model.train()
    model(TOKENS, labels=TOKENS).loss.backward()
    router = first_block(model).gate
    assert router.weight.grad.abs().sum() > 0
    # Option 2 with zero nulls: the LM loss is invariant to the null logits (they cancel in the
    # renormalisation); only the aux loss teaches gate2 when to skip.
    assert router.gate2.grad.abs().max() < 1e-6
    model.zero_grad()
    model(TOKENS)
    sum(routing_aux_loss(r) for r in collect_routings(model)).backward()
    assert router.gate2.grad.abs().sum() > 0

    model = convert(tiny_model("mixtral"), null_experts=4, top_k=3, normalize=1, gate2_init="random")
    model.train()
    model(TOKENS, labels=TOKENS).loss.backward()
    assert first_block(model).gate.gate2.grad.abs().sum() > 0


def test_routings_feed_stats_and_losses():
    model = convert(tiny_model("qwen2_moe"), null_experts=2, top_k=3)
    assert [n for n, _ in routers(model)] == ["model.layers.0.mlp.gate", "model.layers.1.mlp.gate"]
    logits_of(model)
    routings = collect_routings(model)
    assert len(routings) == 2
    for r in routings:
        assert r.probs.shape == (TOKENS.numel(), E + 2)
        assert torch.allclose(r.probs.sum(dim=-1), torch.ones(TOKENS.numel()))
        assert r.num_experts == E and r.num_null == 2
        assert torch.isfinite(routing_aux_loss(r))


def test_config_records_the_settings():
    model = convert(tiny_model("qwen2_moe"), null_experts=3, top_k=4, null_type="identity", gate2_init="mean")
    assert model.config.adamoe == {
        "null_experts": 3,
        "top_k": 4,
        "null_type": "identity",
        "normalize": 0,  # Qwen2-MoE's own rule: raw probabilities
        "gate2_init": "mean",
        "seed": 0,
        "family": "qwen2_moe",
        "num_experts": E,
        "base_top_k": K,
        "version": 1,
    }
    assert model.config.to_dict()["adamoe"]["top_k"] == 4
    assert convert(tiny_model("mixtral"), null_experts=1).config.adamoe["normalize"] == 2


def test_package_level_convert_is_callable_even_after_submodule_import():
    import adamoe.hf.convert as module

    model = adamoe.hf.convert(tiny_model("olmoe"), null_experts=1)
    assert callable(module) and isinstance(first_block(model).gate, AdaMoERouter)


def test_hf_router_logits_are_refused_with_a_clear_error():
    model = convert(tiny_model("mixtral"), null_experts=2, top_k=3)
    with pytest.raises(ValueError, match="output_router_logits"):
        model(TOKENS, output_router_logits=True)


# --- errors -------------------------------------------------------------------------------------------


def test_unsupported_architecture_lists_the_supported_ones():
    with pytest.raises(ValueError, match="not supported") as err:
        convert(tiny_model("llama"), null_experts=2)
    message = str(err.value)
    assert "\n" not in message and all(f in message for f in FAMILY_SPECS)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"null_experts": -1}, "null_experts"),
        ({"null_experts": 2, "top_k": 7}, "top_k"),
        ({"null_experts": 2, "top_k": 0}, "top_k"),
        ({"null_experts": 2, "null_type": "copy"}, "null_type"),
        ({"null_experts": 2, "normalize": 3}, "normalize"),
        ({"null_experts": 2, "gate2_init": "ones"}, "gate2_init"),
    ],
)
def test_impossible_settings_are_one_line_errors(kwargs, field):
    model = tiny_model("mixtral")
    with pytest.raises(ValueError, match=f"^{field}:") as err:
        convert(model, **kwargs)
    assert "\n" not in str(err.value)
    assert not any(isinstance(m, AdaMoERouter) for m in model.modules())


def test_recorded_settings_are_checked_and_named_by_their_place():
    from adamoe.hf.convert import settings_from_record

    record = convert(tiny_model("mixtral"), null_experts=2).config.adamoe
    assert settings_from_record(record).null_experts == 2
    with pytest.raises(ValueError, match=r"^config\.adamoe\.normalize: expected one of"):
        settings_from_record({**record, "normalize": 5})
    with pytest.raises(ValueError, match="missing field"):
        settings_from_record({"null_experts": 2})


def test_group_limited_k_beyond_eligible_experts_is_an_error():
    model = tiny_model("deepseek_v3", n_group=2, topk_group=1)
    with pytest.raises(ValueError, match=r"^top_k:.*group-limited"):
        convert(model, null_experts=1, top_k=4)
    assert not any(isinstance(m, AdaMoERouter) for m in model.modules())


def test_converting_twice_is_an_error():
    model = convert(tiny_model("mixtral"), null_experts=2)
    with pytest.raises(ValueError, match="already converted"):
        convert(model, null_experts=2)


def test_null_bias_dial_moves_load_monotonically():
    from adamoe.eval.dial import null_routers

    model = convert(tiny_model("qwen3_moe"), null_experts=4, top_k=3, gate2_init="random")
    assert len(null_routers(model)) == 2
    loads = []
    for bias in (-20.0, -0.5, 0.0, 0.5, 20.0):
        for _, router in routers(model):
            router.null_bias = bias
        with RoutingRecorder(model) as rec:
            logits_of(model)
        loads.append(rec.summary()["load"])
    assert loads[0] == 3.0 and loads[-1] == 0.0
    assert loads[0] > loads[1] > loads[2] > loads[3] > loads[4]


def test_copy_jitter_keeps_the_best_true_expert_and_makes_the_dial_smooth():
    from adamoe.eval.dial import null_bias

    torch.manual_seed(0)
    ids = torch.randint(0, 128, (4, 32))
    model = convert(
        tiny_model("mixtral", num_local_experts=8), null_experts=8, top_k=3, gate2_init="copy_jitter"
    )
    with RoutingRecorder(model) as rec, torch.no_grad():
        model(ids)
    for _, r in routers(model):
        routing = r.last_routing
        best_true = routing.probs[:, :8].argmax(dim=-1)
        assert (routing.indices == best_true[:, None]).any(dim=-1).all()  # no token loses its best expert
        assert (routing.probs[:, 8:] != routing.probs[:, :8]).all()  # twins no longer tie exactly
    assert all(s.bypass_tokens == 0 for s in rec.layers.values())
    loads = []
    for b in (0.0, 0.02, 0.05, 0.1, 0.5):
        with null_bias(model, b), RoutingRecorder(model) as rec, torch.no_grad():
            model(ids)
        loads.append(rec.summary()["load"])
    assert loads == sorted(loads, reverse=True)
    assert len({round(v, 3) for v in loads}) >= 4  # intermediate loads exist: not a single step
