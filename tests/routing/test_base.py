"""Routing record and weight normalisation, checked against hand-computed values."""

import pytest
import torch

from adamoe.routing.base import LinearRouter, Routing, normalize_weights

# E = 2 true experts (0, 1), m = 2 null experts (2, 3); -1 is an empty slot.
INDICES = torch.tensor([[0, 2, 1], [3, 2, -1], [1, 0, 3]])
VALUES = torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.4, 0.0], [0.4, 0.1, 0.2]])


def _routing(null_type: str = "zero") -> Routing:
    probs = torch.full((3, 4), 0.25)
    return Routing(
        indices=INDICES,
        weights=VALUES.clone(),
        probs=probs,
        logits=probs.log(),
        num_experts=2,
        num_null=2,
        null_type=null_type,
    )


def test_routing_masks_load_and_counts_by_hand():
    r = _routing()
    assert r.num_tokens == 3 and r.top_k == 3
    assert r.true_mask().tolist() == [[True, False, True], [False, False, False], [True, True, False]]
    assert r.null_mask().tolist() == [[False, True, False], [True, True, False], [False, False, True]]
    assert r.true_experts_per_token().tolist() == [2, 0, 2]
    assert r.load() == pytest.approx(4 / 3)
    # expert 0: tokens 0, 2; expert 1: tokens 0, 2; null 2: tokens 0, 1; null 3: tokens 1, 2; -1 ignored
    assert r.expert_counts().tolist() == [2, 2, 2, 2]


def test_detach_cuts_the_graph_but_keeps_values():
    logits = torch.randn(3, 4, requires_grad=True)
    probs = torch.softmax(logits, -1)
    r = Routing(
        indices=INDICES, weights=probs[:, :3] * 2, probs=probs, logits=logits, num_experts=2, num_null=2
    )
    d = r.detach()
    assert r.weights.requires_grad and not d.weights.requires_grad and not d.probs.requires_grad
    assert torch.equal(d.weights, r.weights.detach()) and torch.equal(d.indices, r.indices)
    assert (d.num_experts, d.num_null, d.null_type) == (2, 2, "zero")


def test_normalize_option2_zero_nulls_by_hand():
    w = normalize_weights(VALUES, INDICES, num_experts=2, normalize=2, null_type="zero")
    expected = torch.tensor(
        [
            [0.5 / 0.7, 0.0, 0.2 / 0.7],  # renormalised over the two true picks
            [0.0, 0.0, 0.0],  # only nulls: the token bypasses the layer
            [0.4 / 0.5, 0.1 / 0.5, 0.0],
        ]
    )
    torch.testing.assert_close(w, expected, atol=1e-6, rtol=0)


def test_normalize_option1_zero_nulls_by_hand():
    w = normalize_weights(VALUES, INDICES, num_experts=2, normalize=1, null_type="zero")
    expected = torch.tensor(
        [
            [0.5 / 1.0, 0.0, 0.2 / 1.0],  # over all k picks; the null share is simply dropped
            [0.0, 0.0, 0.0],
            [0.4 / 0.7, 0.1 / 0.7, 0.0],
        ]
    )
    torch.testing.assert_close(w, expected, atol=1e-6, rtol=0)


def test_normalize_identity_nulls_keep_their_share_by_hand():
    for mode in (1, 2):  # with identity nulls every valid slot contributes, so 1 and 2 coincide
        w = normalize_weights(VALUES, INDICES, num_experts=2, normalize=mode, null_type="identity")
        expected = torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.4, 0.0], [0.4 / 0.7, 0.1 / 0.7, 0.2 / 0.7]])
        torch.testing.assert_close(w, expected, atol=1e-6, rtol=0)


def test_normalize_option0_keeps_raw_values_and_zeroes_nulls():
    w = normalize_weights(VALUES, INDICES, num_experts=2, normalize=0, null_type="zero")
    expected = torch.tensor([[0.5, 0.0, 0.2], [0.0, 0.0, 0.0], [0.4, 0.1, 0.0]])
    assert torch.equal(w, expected)
    w = normalize_weights(VALUES, INDICES, num_experts=2, normalize=0, null_type="identity")
    assert torch.equal(w, VALUES)  # the -1 slot already carries 0


def test_linear_router_logits_and_jitter_only_in_training():
    router = LinearRouter(hidden_size=6, num_experts=3, num_null=2, jitter=0.5)
    assert router.weight.shape == (5, 6) and router.num_total == 5
    h = torch.randn(4, 6)
    router.eval()
    expected = torch.stack([torch.stack([h[t] @ router.weight[i] for i in range(5)]) for t in range(4)])
    torch.testing.assert_close(router.compute_logits(h), expected, atol=1e-5, rtol=0)
    router.train()
    noisy = router.compute_logits(h)
    assert not torch.allclose(noisy, expected)
    # multiplicative U(0.5, 1.5) noise on each input feature: bounded by the |h| * |W| sums
    bound = 0.5 * (h.abs() @ router.weight.abs().T)
    assert bool(((noisy - expected).abs() <= bound + 1e-5).all())


def test_select_keeps_the_chosen_tokens():
    r = _routing("identity")
    sub = r.select(torch.tensor([True, False, True]))
    assert sub.indices.tolist() == [[0, 2, 1], [1, 0, 3]]
    assert torch.equal(sub.weights, VALUES[[0, 2]])
    assert (sub.num_experts, sub.num_null, sub.null_type) == (2, 2, "identity")
    assert r.select(torch.tensor([1])).indices.tolist() == [[3, 2, -1]]  # index form too


def test_null_bias_shifts_only_null_logits_and_lowers_load():
    router = LinearRouter(hidden_size=6, num_experts=3, num_null=3).eval()
    h = torch.randn(200, 6)
    base = router.compute_logits(h)
    router.null_bias = 1.5
    shifted = router.compute_logits(h)
    torch.testing.assert_close(shifted[:, :3], base[:, :3], atol=0, rtol=0)
    torch.testing.assert_close(shifted[:, 3:], base[:, 3:] + 1.5, atol=1e-6, rtol=0)

    # the dial: more null bias -> fewer true experts per token (top-2 over the biased logits)
    def load(bias: float) -> float:
        router.null_bias = bias
        return float((torch.topk(router.compute_logits(h), 2, -1).indices < 3).sum(-1).float().mean())

    loads = [load(b) for b in (-20.0, 0.0, 1.0, 20.0)]
    assert loads[0] == 2.0 and loads[-1] == 0.0
    assert loads[0] > loads[1] > loads[2] > loads[3]


@pytest.mark.parametrize("null_type", ["zero", "identity"])
@pytest.mark.parametrize("normalize", [1, 2])
def test_log_space_weights_equal_the_probability_ratio(normalize: int, null_type: str) -> None:
    """With the picks' logits the weights are the same numbers as values / sum(values)."""
    logits = torch.randn(64, 9, generator=torch.Generator().manual_seed(5)) * 3
    probs = logits.softmax(-1)
    values, indices = probs.topk(4, dim=-1)
    kw = {"num_experts": 4, "normalize": normalize, "null_type": null_type}
    ratio = normalize_weights(values, indices, **kw)
    log_space = normalize_weights(values, indices, **kw, logits=logits.gather(1, indices))
    torch.testing.assert_close(log_space, ratio, rtol=1e-5, atol=1e-7)


def test_log_space_weights_stay_finite_when_the_chosen_probabilities_underflow() -> None:
    """A sharp router: the chosen true experts sit 90-104 logits below a null, p ~ 1e-40 or exactly 0.
    Probability space gives NaN gradients (90) or all-zero weights (104); log space gives the hand-computed
    softmax over the two chosen true logits, with finite gradients."""
    for gap in (90.0, 104.0):
        logits = torch.tensor([[0.0, -gap, -gap - 1.0, -1.0, 0.5, 0.2, 0.1, 0.3, 0.4]], requires_grad=True)
        indices = torch.tensor([[1, 2, 4, 8]])  # two true experts + two zero nulls
        values = logits.softmax(-1).gather(1, indices)
        kw = {"num_experts": 4, "normalize": 2, "null_type": "zero"}
        weights = normalize_weights(values, indices, **kw, logits=logits.gather(1, indices))
        e = torch.tensor([1.0, torch.e**-1])  # exp(l - max) of the two true picks
        torch.testing.assert_close(weights[0].detach(), torch.cat([e / e.sum(), torch.zeros(2)]))
        (weights * torch.tensor([[1.0, 2.0, 0.0, 0.0]])).sum().backward()
        assert torch.isfinite(logits.grad).all()
        logits.grad = None
    probability_space = normalize_weights(values, indices, **kw)
    # the old failure at gap 104: the token lost its experts
    assert float(probability_space.detach().sum()) == 0.0
