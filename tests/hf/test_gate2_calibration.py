"""Calibrated ``copy_jitter``: the jitter is drawn orthogonal to each layer's mean router input.

Real router inputs share a large mean direction, so an unconstrained jitter ``j`` has one sign of
``j · x`` for most tokens and each layer's initial load is decided expert by expert (SmolLM2: 1.18-1.66
per layer). Orthogonal to the mean, the sign varies token by token and every layer starts at k·E/(E+m).
"""

from __future__ import annotations

import pytest
import torch

from adamoe.hf.convert import convert, routers
from adamoe.hf.gate2 import CALIBRATION_TEXTS, init_gate2, router_input_means
from adamoe.hf.tiny import tiny_model
from adamoe.hf.upcycle import upcycle_to_mixtral
from adamoe.stats import RoutingRecorder

E, M, K = 8, 8, 3
EXPECTED_LOAD = K * E / (E + M)  # 1.5
WIDE = {"hidden_size": 128, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2}


def load_of(x: torch.Tensor, weight: torch.Tensor, gate2: torch.Tensor) -> float:
    """Naive reference: mean over tokens of the true experts among each token's top K of E+M logits."""
    logits = x @ torch.cat([weight, gate2]).T
    return sum(int((row.topk(K).indices < E).sum()) for row in logits) / len(logits)


def skewed_inputs(n: int, seed: int, dim: int = 256, mean_scale: float = 2.0) -> torch.Tensor:
    """(n, dim) router inputs around a common mean ``mean_scale`` times the per-token spread (as in LLMs)."""
    direction = torch.randn(dim, generator=torch.Generator().manual_seed(99))
    direction = mean_scale * direction / direction.norm() * dim**0.5  # |x - mu| ~ sqrt(dim)
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) + direction


def test_jitter_orthogonal_to_the_mean_restores_the_load_on_skewed_inputs():
    calib, held = skewed_inputs(2000, seed=1), skewed_inputs(2000, seed=2)  # held: other tokens
    plain, fixed = [], []
    for seed in range(8):
        weight = 0.02 * torch.randn(E, 256, generator=torch.Generator().manual_seed(100 + seed))
        gen = torch.Generator().manual_seed(seed)
        plain.append(load_of(held, weight, init_gate2(weight, M, "copy_jitter", gen)))
        gen = torch.Generator().manual_seed(seed)
        gate2 = init_gate2(weight, M, "copy_jitter", gen, mean=calib.mean(0))
        jitter = gate2 - weight
        assert float((jitter @ calib.mean(0)).abs().max()) < 1e-4 * float(
            jitter.norm() * calib.mean(0).norm()
        )
        assert 0 < float(jitter.abs().max()) < 0.05 * float(weight.abs().max())  # still a small jitter
        fixed.append(load_of(held, weight, gate2))
    assert max(abs(v - EXPECTED_LOAD) for v in plain) > 0.2, plain  # the problem exists here
    assert all(abs(v - EXPECTED_LOAD) <= 0.05 for v in fixed), fixed


def test_relative_jitter_keeps_the_load_on_rows_of_very_different_scale():
    """A fitted router folds the input's per-dimension scale into its rows: dimensions where the input is
    near zero get huge weights (the moefied SmolLM2's layer 21: row norms 36-1342). A jitter scaled to the
    whole gate's std then swamps every logit and the nulls win most slots; relative to each weight it
    stays a tie-breaker."""
    quiet = torch.ones(256)
    quiet[128:] = 1e-3  # half the input dimensions are near zero
    calib, held = skewed_inputs(2000, seed=3) * quiet, skewed_inputs(2000, seed=4) * quiet
    loads, swamped = [], []
    for seed in range(4):
        weight = 0.02 * torch.randn(E, 256, generator=torch.Generator().manual_seed(200 + seed))
        weight[5:, 128:] *= 1000.0  # large weights where the input is tiny: logits of similar size
        twins = weight.repeat(M // E, 1)
        gate2 = init_gate2(weight, M, "copy_jitter", torch.Generator().manual_seed(seed), mean=calib.mean(0))
        assert float(((gate2 - twins).norm(dim=1) / twins.norm(dim=1)).max()) < 0.02  # small, per row
        loads.append(load_of(held, weight, gate2))
        noise = torch.randn(M, 256, generator=torch.Generator().manual_seed(50 + seed))
        swamped.append(load_of(held, weight, twins + 0.01 * float(weight.std()) * noise))
    assert max(swamped) < EXPECTED_LOAD - 0.2, swamped  # the failure the relative jitter avoids
    assert all(abs(v - EXPECTED_LOAD) <= 0.07 for v in loads), loads


def test_router_input_means_match_a_naive_capture():
    model = upcycle_to_mixtral(tiny_model("llama", seed=0, head_dim=32, **WIDE), num_experts=E, seed=0)
    batches = [{"input_ids": torch.randint(0, 128, (2, n))} for n in (5, 9)]
    captured: dict[int, list[torch.Tensor]] = {}
    hooks = [
        layer.mlp.gate.register_forward_pre_hook(lambda mod, a, i=i: captured.setdefault(i, []).append(a[0]))
        for i, layer in enumerate(model.model.layers)
    ]
    with torch.no_grad():
        for b in batches:
            model(**b)
    for h in hooks:
        h.remove()
    means = router_input_means(model, batches)
    assert list(means) == [f"model.layers.{i}.mlp" for i in range(len(model.model.layers))]
    for i, name in enumerate(means):
        rows = torch.cat([c.reshape(-1, c.shape[-1]) for c in captured[i]])
        assert rows.shape[0] == 2 * 5 + 2 * 9
        torch.testing.assert_close(means[name], rows.float().mean(0), atol=1e-6, rtol=1e-5)


def _upcycled(seed: int, offset: float) -> torch.nn.Module:
    """Tiny upcycled model whose residual stream carries a common direction (as real LLMs' does)."""
    dense = tiny_model("llama", seed=seed, head_dim=32, **WIDE)
    with torch.no_grad():
        direction = torch.randn(128, generator=torch.Generator().manual_seed(7))
        dense.model.embed_tokens.weight += offset * direction / direction.norm()
    return upcycle_to_mixtral(dense, num_experts=E, top_k=2, seed=seed)


def test_convert_draws_each_layers_jitter_orthogonal_to_that_layers_mean():
    """The model-level wiring: block names map to their own means; the uncalibrated draw is not orthogonal."""
    cosines = {}
    for calibrated in (False, True):
        model = _upcycled(0, offset=0.3)
        means = router_input_means(model, [{"input_ids": torch.randint(0, 128, (4, 32))}])
        convert(
            model,
            null_experts=M,
            top_k=K,
            gate2_init="copy_jitter",
            seed=0,
            calibration=means if calibrated else None,
        )
        assert model.config.adamoe.get("gate2_calibrated", False) is calibrated
        for name, router in routers(model):
            jitter = (router.gate2 - router.weight).detach().float()
            u = means[name.removesuffix(".gate")] / means[name.removesuffix(".gate")].norm()
            cosines.setdefault(calibrated, []).append(
                float((jitter @ u).abs().max() / jitter.norm(dim=1).min())
            )
    assert max(cosines[True]) < 1e-4 < 1e-2 < min(cosines[False]), cosines


def test_calibrated_jitter_stays_independent_of_the_copied_rows_and_the_dial_works():
    model = _upcycled(0, offset=0.3)
    calibration = router_input_means(model, [{"input_ids": torch.randint(0, 128, (4, 32))}])
    convert(model, null_experts=M, top_k=K, gate2_init="copy_jitter", seed=0, calibration=calibration)
    ids = torch.randint(0, 128, (8, 64))
    for name, router in routers(model):
        twins = router.weight.detach().float()
        jitter = router.gate2.detach().float() - twins
        r = float(torch.corrcoef(torch.stack([jitter.flatten(), twins.flatten()]))[0, 1])
        assert abs(r) < 0.2, (name, r)
    loads = []
    for bias in (-1.0, 0.0, 1.0):
        for _, router in routers(model):
            router.null_bias = bias
        with RoutingRecorder(model) as rec, torch.no_grad():
            model(ids)
        loads.append(rec.summary()["load"])
    assert loads[0] > loads[1] > loads[2], loads  # bias < 0 disfavours the nulls: more true experts


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gate2_init": "copy"}, "only gate2_init='copy_jitter'"),
        ({"gate2_init": "copy_jitter", "drop": 1}, "one mean per MoE block"),
        ({"gate2_init": "copy_jitter", "size": 5}, r"expected shape \(128,\)"),
    ],
)
def test_bad_calibration_is_refused_in_one_line(kwargs, match):
    model = _upcycled(0, offset=0.0)
    calibration = {
        name: torch.zeros(kwargs.get("size", 128))
        for name, _ in model.named_modules()
        if name.endswith(".mlp") and name.startswith("model.layers.")
    }
    for name in list(calibration)[: kwargs.get("drop", 0)]:
        del calibration[name]
    with pytest.raises(ValueError, match=match) as err:
        convert(model, null_experts=M, top_k=K, gate2_init=kwargs["gate2_init"], calibration=calibration)
    assert "\n" not in str(err.value)


HELD_OUT = (
    "Glaciers form where more snow falls in winter than melts in summer. Over many years the snow is "
    "pressed into ice so thick that it begins to flow downhill under its own weight, carving valleys.",
    "Question: If it is raining and you have no umbrella, what might you do to stay dry?\nAnswer: Wait "
    "indoors or under a shelter until the rain stops.",
    "Which planet is closest to the Sun?\nA. Venus\nB. Earth\nC. Mercury\nD. Mars\nAnswer: C",
    '"Did you remember to feed the cat?" Anna called from upstairs.\n"Twice," her brother replied, '
    '"and she is still pretending she has not eaten all day."',
    "for i in range(1, 16):\n    if i % 15 == 0:\n        print('FizzBuzz')\n    elif i % 3 == 0:\n"
    "        print('Fizz')\n    else:\n        print(i)\n",
    "A train leaves at 3:15 pm and the journey takes 2 hours and 50 minutes, so it arrives at 6:05 pm. "
    "A ticket costs 18 dollars, and a return ticket costs 32 dollars.",
    "Sentence: The trophy did not fit in the suitcase because it was too big. What was too big? The "
    "trophy, because a big object cannot fit into a smaller container.",
    "The printing press, developed in Europe around 1440, made books far cheaper to produce and helped "
    "spread new ideas about science, religion and government across the continent.",
    "Bees communicate the direction of flowers to the rest of the hive with a waggle dance: the angle of "
    "the dance relative to straight up shows the angle of the food source relative to the sun.",
    "Question: Is it safe to leave a candle burning in an empty house?\nAnswer: No. An unattended flame "
    "can set curtains or furniture alight, so candles should be put out before leaving.",
    "Statement: Every square is a rectangle. Statement: This shape is a rectangle. Conclusion: This shape "
    "is a square. Is the conclusion valid? No, a rectangle need not have four equal sides.",
    "SELECT name, city FROM customers WHERE country = 'Norway' ORDER BY name;\n-- lists Norwegian "
    "customers alphabetically",
    "Dear Mr. Patel, thank you for your letter of 4 March. I am pleased to confirm that your order of "
    "twelve chairs will be delivered next Thursday between nine and noon. Kind regards, Helen",
    "The recipe needs 250 grams of flour, two eggs, a pinch of salt and 300 millilitres of milk. Whisk "
    "everything into a smooth batter and let it rest for half an hour before frying.",
    "Which word does not belong with the others?\nA. violin\nB. cello\nC. trumpet\nD. viola\nAnswer: C, "
    "because it is the only brass instrument.",
    "After the storm the village was silent. Fallen branches lay across the road, and the old bridge "
    "over the river had finally given way, cutting the farms on the far bank off from the market.",
)


def held_out_layer_loads(model: torch.nn.Module, tok) -> list[float]:
    """Per-layer Load of ``model`` over the :data:`HELD_OUT` texts, one text per forward."""
    with RoutingRecorder(model) as rec:
        for text in HELD_OUT:
            model(**tok(text, return_tensors="pt"))
    return [s["load"] for s in rec.summary()["layers"].values()]


@pytest.mark.slow
@torch.no_grad()
def test_smollm2_adamoe_initial_load_is_k_e_over_e_plus_m_in_every_layer():
    """On held-out text (none of it in CALIBRATION_TEXTS) every layer starts at 1.5 +- 0.1; with plain
    jitter the same text measured 1.25-1.74 per layer (seed 0)."""
    from adamoe.hf.models import DEFAULT_NULL, DEFAULT_TOP_K, resolve_model

    assert not set(HELD_OUT) & set(CALIBRATION_TEXTS)
    model, tok, _ = resolve_model("smollm2-adamoe", seed=0)
    assert model.config.adamoe["gate2_calibrated"] is True
    expected = DEFAULT_TOP_K * 8 / (8 + DEFAULT_NULL)
    loads = held_out_layer_loads(model, tok)
    assert len(loads) == model.config.num_hidden_layers
    assert all(abs(v - expected) <= 0.1 for v in loads), [round(v, 3) for v in loads]


@pytest.mark.slow
@torch.no_grad()
def test_moefied_smollm2_adamoe_initial_load_is_k_e_over_e_plus_m_in_every_layer():
    """The moefied MoE's fitted router has rows 40x apart in norm (layers 21, 24); with a jitter scaled to
    the gate's std those layers started at 0.31-0.52. Relative jitter: every layer 1.5 +- 0.15."""
    import copy

    from adamoe.experiments.moe_model import build_default_moe
    from adamoe.hf.gate2 import calibration_means

    moe, tok, _ = build_default_moe(log=lambda _: None)
    model = copy.deepcopy(moe)
    convert(
        model,
        null_experts=M,
        top_k=K,
        gate2_init="copy_jitter",
        seed=0,
        calibration=calibration_means(moe, tok),
    )
    loads = held_out_layer_loads(model, tok)
    assert len(loads) == model.config.num_hidden_layers
    assert all(abs(v - EXPECTED_LOAD) <= 0.15 for v in loads), [round(v, 3) for v in loads]
