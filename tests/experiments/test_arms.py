"""The MoE arms against hand computations: the straight-through split factor (value 1, gradient of
log s from a naive probability-space formula), the STE router (option 2 forward, a gradient on gate2
that option 2 does not give), and the random-null control (matched Load, best experts kept)."""

from __future__ import annotations

import copy

import pytest
import torch

from adamoe.experiments.arms import (
    Arm,
    RandomNullRouter,
    SplitSTERouter,
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
    with pytest.raises(ValueError, match="arms: expected names like top2"):
        parse_arm("m8k3-opt3")


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


def _converted(m: int = 4, k: int = 3):
    model, _, _ = ModelSpec.parse("tiny-qwen2_moe").load(routed=False)
    return convert(model, null_experts=m, top_k=k, normalize=2, gate2_init="random", seed=0)


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
