"""The MoE arms against hand computations: the straight-through split factor (value 1, gradient of
log s from a naive probability-space formula), the STE router (option 2 forward, a gradient on gate2
that option 2 does not give), the scaled weighting (option 2 times true picks / k_base, token by token),
and the random-null control (matched Load, best experts kept, scaled when its arm is)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from adamoe.experiments.arms import (
    Arm,
    RandomNullRouter,
    ScaledRandomNullRouter,
    ScaledRouter,
    ScaledSTERouter,
    SplitSTERouter,
    apply_weights,
    make_ste,
    parse_arm,
    random_null_control,
    split_ste,
)
from adamoe.hf.convert import convert, routers
from adamoe.hf.models import ModelSpec


def test_parse_arm():
    assert parse_arm("top2") == Arm(name="top2", m=0, k=2)
    assert parse_arm("m8k3") == Arm(name="m8k3", m=8, k=3, kind="opt2")
    assert parse_arm("m8k3-opt1").normalize == 1 and parse_arm("m8k3-ste").normalize is None
    assert parse_arm("m8k5-scaled") == Arm(name="m8k5-scaled", m=8, k=5, kind="scaled")
    assert parse_arm("m8k5-ste-scaled") == Arm(name="m8k5-ste-scaled", m=8, k=5, kind="ste-scaled")
    assert parse_arm("m8k5-scaled").normalize == parse_arm("m8k5-ste-scaled").normalize == 2
    assert [parse_arm(n).control_weights for n in ("m8k5", "m8k5-opt1", "m8k5-ste")] == ["opt2"] * 3
    assert (
        parse_arm("m8k5-scaled").control_weights == parse_arm("m8k5-ste-scaled").control_weights == "scaled"
    )


@pytest.mark.parametrize(
    "bad", ["m8k3-opt3", "m8k3-scaled-ste", "m8k3-scale", "top4-scaled", "m8k3-ste-opt1"]
)
def test_parse_arm_rejects_bad_names_in_one_line(bad):
    with pytest.raises(ValueError, match="arms: expected names like top2") as err:
        parse_arm(bad)
    assert "m8k3-ste-scaled" in str(err.value) and "\n" not in str(err.value)


def test_split_ste_is_one_forward_and_d_log_s_backward():
    torch.manual_seed(0)
    logits = torch.randn(5, 6, requires_grad=True)  # E = 4 true experts, 2 nulls
    idx = torch.tensor([[0, 4, 2], [5, 4, 1], [3, -1, 5], [4, 5, -1], [1, 2, 3]])
    factor = split_ste(logits, idx, num_experts=4)
    assert torch.equal(factor.detach(), torch.ones(5, 1))
    coef = torch.randn(5, 1)
    (factor * coef).sum().backward()
    got = logits.grad.clone()
    # reference: log s = log(sum_true p / sum_picked p) in probability space, token by token
    ref = torch.zeros_like(logits)
    for t in range(5):
        x = logits.detach()[t].clone().requires_grad_(True)
        picks = [int(i) for i in idx[t] if i >= 0]
        true = [i for i in picks if i < 4]
        if not true:
            continue  # no true pick: constant factor, no gradient
        p = torch.softmax(x, dim=0)
        (coef[t, 0] * torch.log(p[true].sum() / p[picks].sum())).backward()
        ref[t] = x.grad
    torch.testing.assert_close(got, ref)
    assert torch.isfinite(got).all() and got[3].abs().sum() == 0  # token 3 picked only nulls


def _converted(m: int = 4, k: int = 3, **settings):
    model, _, _ = ModelSpec.parse("tiny-qwen2_moe").load(routed=False)
    settings = {"normalize": 2, **settings}
    return convert(model, null_experts=m, top_k=k, gate2_init="random", seed=0, **settings)


def test_ste_router_keeps_option_2_outputs_and_gives_gate2_a_gradient():
    ref = _converted()
    ste = make_ste(copy.deepcopy(ref))
    r_ref, r_ste = routers(ref)[0][1], routers(ste)[0][1]
    assert isinstance(r_ste, SplitSTERouter) and r_ste.normalize == 2
    hidden = torch.randn(64, r_ref.hidden_dim, generator=torch.Generator().manual_seed(1))
    target = torch.randn(64, r_ref.top_k, generator=torch.Generator().manual_seed(2))
    grads = []
    for router in (r_ref, r_ste):
        _, weights, idx = router(hidden)
        (weights * target).sum().backward()
        grads.append(router.gate2.grad.clone())
        out = (weights.detach(), idx)
        if router is r_ref:
            expected = out
    torch.testing.assert_close(out[0], expected[0], rtol=0, atol=1e-6)
    assert torch.equal(out[1], expected[1])
    assert grads[0].abs().max() < 1e-6  # option 2: zero nulls cancel out of the weights
    assert grads[1].abs().max() > 1e-4  # the STE arm: the LM loss reaches the null logits


def test_random_null_control_keeps_the_best_experts_at_the_matched_load():
    model = _converted(m=0, k=2)
    name, router = routers(model)[0]
    hidden = torch.randn(4000, router.hidden_dim, generator=torch.Generator().manual_seed(3))
    logits = router.compute_logits(hidden)
    loads = {"0": 1.3, "1": 0.4}
    random_null_control(model, loads, seed=5)
    assert isinstance(router, RandomNullRouter) and router.top_k == 2
    _, weights, idx = router(hidden)
    kept = (idx >= 0).sum(dim=1).float()
    assert set(kept.unique().tolist()) == {1.0, 2.0} and kept.mean().item() == pytest.approx(1.3, abs=0.03)
    best = logits.argmax(dim=1)
    assert torch.equal(idx[:, 0], best)  # the first kept expert is the router's best
    one = kept == 1
    assert torch.all(idx[one, 1] == -1) and torch.allclose(weights[one, 0], torch.ones(int(one.sum())))
    two = ~one  # option 2: the two kept weights renormalised to 1
    torch.testing.assert_close(weights[two].sum(dim=1), torch.ones(int(two.sum())))
    layer1 = routers(model)[1][1]
    _, _, idx1 = layer1(hidden)
    assert ((idx1 >= 0).sum(dim=1).float().mean().item()) == pytest.approx(0.4, abs=0.03)
    with pytest.raises(ValueError, match="loads: no matched Load for layer 1"):
        random_null_control(_converted(m=0, k=2), {"0": 1.0}, seed=0)
    assert name.endswith("layers.0.mlp.gate")


def _option2_by_hand(logits: torch.Tensor, picks: list[list[int]], num_experts: int) -> torch.Tensor:
    """Option 2 token by token: exp(l_i) / sum of exp over the token's true picks; nulls and empty 0."""
    out = torch.zeros(len(picks), len(picks[0]))
    for t, row in enumerate(picks):
        true = [i for i in row if 0 <= i < num_experts]
        denom = sum(math.exp(float(logits[t, i])) for i in true)
        for s, i in enumerate(row):
            out[t, s] = math.exp(float(logits[t, i])) / denom if i in true else 0.0
    return out


def test_scaled_weights_are_option_2_times_true_picks_over_k_base():
    model = apply_weights(_converted(m=4, k=3), kind="scaled")
    router = routers(model)[0][1]  # k_base: the router's own base_top_k, tiny-qwen2_moe's top-2
    assert isinstance(router, ScaledRouter) and (router.normalize, router.base_top_k) == (2, 2)
    logits = torch.tensor(
        [
            [0.3, -1.0, 2.0, 0.5, 0.1, 0.0, -0.2, 0.4],  # E = 4 true (0-3), 4 nulls (4-7)
            [1.0, 0.2, -0.5, 0.0, 0.9, 0.8, 0.7, 0.6],
            [0.0, 1.5, 0.5, -0.3, 0.2, 0.1, 0.0, 0.3],
            [-0.4, 0.6, 0.2, 1.1, 0.0, 0.5, 0.3, -0.1],
        ]
    )
    picks = [[2, 4, 0], [4, 5, 6], [1, 2, 7], [3, 1, 2]]  # true picks j = 2, 0, 2, 3
    idx = torch.tensor(picks)
    vals = torch.softmax(logits, dim=-1).gather(1, idx)
    got = router.combine(logits, idx, vals)
    option2 = _option2_by_hand(logits, picks, num_experts=4)
    j = torch.tensor([[2.0], [0.0], [2.0], [3.0]])
    torch.testing.assert_close(got, option2 * j / 2)
    assert torch.equal(got[1], torch.zeros(3))  # no true pick: the token bypasses the experts
    torch.testing.assert_close(got[[0, 2]], option2[[0, 2]])  # j = k_base: option 2 itself
    torch.testing.assert_close(got[0].sum(), torch.tensor(1.0))  # weights sum to j / k_base
    torch.testing.assert_close(got[3].sum(), torch.tensor(1.5))
    router.base_top_k = 4  # one source: the scale follows the router's own attribute
    torch.testing.assert_close(router.combine(logits, idx, vals), option2 * j / 4)


def test_ste_scaled_has_the_scaled_forward_and_a_gradient_on_the_null_logits():
    scaled = apply_weights(_converted(), kind="scaled")
    ste = apply_weights(_converted(), kind="ste-scaled")
    r_sc, r_ste = routers(scaled)[0][1], routers(ste)[0][1]
    assert isinstance(r_ste, ScaledSTERouter) and isinstance(r_ste, ScaledRouter)
    hidden = torch.randn(64, r_sc.hidden_dim, generator=torch.Generator().manual_seed(1))
    target = torch.randn(64, r_sc.top_k, generator=torch.Generator().manual_seed(2))
    outs, null_grads = [], []
    for router in (r_sc, r_ste):
        logits = router.compute_logits(hidden).detach().requires_grad_(True)
        idx, vals, _ = router.select(logits)
        weights = router.combine(logits, idx, vals)
        (weights * target).sum().backward()
        null_grads.append(logits.grad[:, router.num_experts :].abs().max())
        outs.append((router(hidden)[1].detach(), idx))
    assert torch.equal(outs[0][1], outs[1][1]) and torch.equal(outs[0][0], outs[1][0])  # exact forward
    assert null_grads[0] == 0  # scaled: option 2 and a count, nothing depends on the null logits
    assert null_grads[1] > 1e-4  # ste-scaled: the split gradient reaches them
    j = ((outs[0][1] >= 0) & (outs[0][1] < 4)).sum(dim=1)
    assert set(j.tolist()) >= {1, 2} and outs[0][0].sum(dim=1).tolist() == pytest.approx((j / 2).tolist())


def test_apply_weights_checks_what_scaled_needs_in_one_line_and_keeps_option_1_and_2_routers():
    model = _converted()
    assert (
        apply_weights(model, kind="opt2") is model and type(routers(model)[0][1]).__name__ == "AdaMoERouter"
    )
    missing, zero = _converted(), _converted()
    del routers(missing)[1][1].base_top_k  # e.g. a router of an older conversion
    routers(zero)[0][1].base_top_k = 0  # j / 0: inf or NaN weights
    bad = {
        "base_top_k: the scaled weighting needs the router's top-k before conversion .* has None": missing,
        "base_top_k: the ste-scaled weighting .* has 0": zero,
        r"normalize: the scaled weighting is defined on option 2 \(normalize=2\), .* has normalize=1": (
            _converted(normalize=1)
        ),
        "null_type: the scaled weighting needs zero nulls .* has 'identity'": _converted(
            null_type="identity"
        ),
    }
    for match, broken in bad.items():
        kind = "ste-scaled" if "ste-scaled" in match else "scaled"
        with pytest.raises(ValueError, match=match) as err:
            apply_weights(broken, kind=kind)
        assert "\n" not in str(err.value)
        assert all(type(r).__name__ == "AdaMoERouter" for _, r in routers(broken))  # nothing swapped
    with pytest.raises(ValueError, match="weights: no random-null control router for 'ste'"):
        random_null_control(_converted(m=0, k=2), {"0": 1.0, "1": 1.0}, seed=0, weights="ste")


def test_random_null_control_in_scaled_mode_scales_the_kept_weights():
    model = _converted(m=0, k=2)
    hidden = torch.randn(2000, routers(model)[0][1].hidden_dim, generator=torch.Generator().manual_seed(3))
    loads = {"0": 1.3, "1": 0.4}
    plain = random_null_control(copy.deepcopy(model), loads, seed=5)
    scaled = random_null_control(model, loads, seed=5, weights="scaled")
    router = routers(scaled)[0][1]
    assert isinstance(router, ScaledRandomNullRouter) and (router.normalize, router.base_top_k) == (2, 2)
    raw = random_null_control(_converted(m=0, k=2, normalize=0), loads, seed=5, weights="scaled")
    assert routers(raw)[0][1].normalize == 2  # normalised as the matched scaled arm, whatever the baseline's
    _, w_plain, idx_plain = routers(plain)[0][1](hidden)
    _, w_scaled, idx = router(hidden)
    assert torch.equal(idx, idx_plain)  # the same coins: only the weighting differs
    kept = (idx >= 0).sum(dim=1, keepdim=True).float()
    option2 = torch.softmax(router.compute_logits(hidden).gather(1, idx.clamp(min=0)), dim=-1)
    option2 = torch.where(idx >= 0, option2, torch.zeros_like(option2))
    option2 = option2 / option2.sum(dim=1, keepdim=True)  # renormalised over the kept experts
    torch.testing.assert_close(w_scaled, option2 * kept / 2)
    one = kept[:, 0] == 1
    assert one.any() and torch.allclose(w_scaled[one, 0], torch.full((int(one.sum()),), 0.5))
    torch.testing.assert_close(w_scaled[~one], w_plain[~one])  # n = k_base: the option-2 control
