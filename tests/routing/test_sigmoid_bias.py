"""Sigmoid scores + per-expert selection bias (DeepSeek-V3 aux-loss-free balancing)."""

import math

import pytest
import torch

from adamoe.routing.sigmoid_bias import SigmoidBiasRouter


def naive_sigmoid_bias(logits, bias, *, k, num_experts, normalize, null_type="zero"):
    """Per token: select the k largest sigmoid(logit) + bias; weight by sigmoid(logit) alone."""
    out = []
    for row in logits.double().tolist():
        s = [1.0 / (1.0 + math.exp(-v)) for v in row]
        order = sorted(range(len(s)), key=lambda i: -(s[i] + float(bias[i])))[:k]
        contributes = {i: i < num_experts or null_type == "identity" for i in order}
        if normalize == 0:
            w = {i: s[i] if contributes[i] else 0.0 for i in order}
        else:
            pool = [i for i in order if contributes[i]] if normalize == 2 else order
            denom = sum(s[i] for i in pool)
            w = {i: s[i] / denom if contributes[i] and denom > 0 else 0.0 for i in order}
        out.append(w)
    return out


def as_dicts(r):
    return [{int(e): float(w) for e, w in zip(i, wt)} for i, wt in zip(r.indices, r.weights.detach())]


@pytest.mark.parametrize(("num_null", "normalize"), [(0, 2), (0, 0), (4, 2), (4, 1)])
def test_matches_naive_with_a_nonzero_bias(num_null, normalize):
    router = SigmoidBiasRouter(hidden_size=16, num_experts=4, top_k=3, num_null=num_null, normalize=normalize)
    with torch.no_grad():
        router.selection_bias.copy_(0.3 * torch.randn(4 + num_null))
    r = router.eval()(torch.randn(48, 16))
    want = naive_sigmoid_bias(r.logits, router.selection_bias, k=3, num_experts=4, normalize=normalize)
    for t, (g, w) in enumerate(zip(as_dicts(r), want)):
        assert set(g) == set(w), f"token {t}"
        for e in w:
            assert g[e] == pytest.approx(w[e], abs=1e-5)
    s = torch.sigmoid(r.logits)
    torch.testing.assert_close(r.probs, s / s.sum(-1, keepdim=True), atol=1e-6, rtol=0)


def test_bias_selects_but_never_enters_the_weights():
    router = SigmoidBiasRouter(hidden_size=4, num_experts=4, top_k=2, normalize=2).eval()
    with torch.no_grad():
        router.weight.copy_(torch.eye(4))  # logits = input
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    assert router(logits).indices.tolist() == [[0, 1]]
    with torch.no_grad():
        router.selection_bias.copy_(torch.tensor([0.0, 0.0, 0.0, 10.0]))  # force expert 3 in
    r = router(logits)
    assert sorted(r.indices[0].tolist()) == [0, 3]
    s0, s3 = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))
    w = dict(zip(r.indices[0].tolist(), r.weights[0].tolist()))
    assert w[0] == pytest.approx(s0 / (s0 + s3)) and w[3] == pytest.approx(s3 / (s0 + s3))


def test_bias_update_direction_by_hand():
    router = SigmoidBiasRouter(hidden_size=4, num_experts=3, top_k=1, bias_update_rate=0.1)
    # counts [2, 1, 0], mean 1: overloaded expert 0 goes down, expert 1 stays, idle expert 2 goes up
    router.update_bias(torch.tensor([[0], [0], [1]]))
    assert router.selection_bias.tolist() == pytest.approx([-0.1, 0.0, 0.1])
    router.update_bias(torch.tensor([[2], [2], [2]]))  # counts [0, 0, 3], mean 1
    assert router.selection_bias.tolist() == pytest.approx([0.0, 0.1, 0.0])
    assert "selection_bias" not in dict(router.named_parameters())  # a buffer: no gradient, saved


def test_bias_moves_only_in_training_and_balances_a_skewed_router():
    router = SigmoidBiasRouter(hidden_size=8, num_experts=4, top_k=1, bias_update_rate=0.02)
    with torch.no_grad():
        router.weight[:, 0] = torch.tensor([3.0, 1.0, 0.0, 0.0])  # feature 0 is constant 1 below
    h = torch.randn(256, 8)
    h[:, 0] = 1.0
    router.eval()
    start = torch.bincount(router(h).indices[:, 0], minlength=4)
    assert router.selection_bias.abs().sum() == 0  # no update in eval
    assert int(start[0]) > 200  # expert 0 takes nearly everything at first
    router.train()
    for _ in range(300):
        router(h)
    router.eval()
    end = torch.bincount(router(h).indices[:, 0], minlength=4)
    assert int(end.max()) < 100 and int(end.min()) > 32, end.tolist()  # 64 each when balanced
    assert float(router.selection_bias[0]) < float(router.selection_bias[2])


def test_bias_update_reads_nothing_back_to_the_host():
    from tests.sync_probe import NoHostSync

    router = SigmoidBiasRouter(hidden_size=4, num_experts=3, top_k=1, bias_update_rate=0.1)
    with NoHostSync():
        router.update_bias(torch.tensor([[0], [0], [1]]))
    assert router.selection_bias.tolist() == pytest.approx([-0.1, 0.0, 0.1])
