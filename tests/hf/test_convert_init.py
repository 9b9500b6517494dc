"""gate2 initialisation draws from its own random stream (issue 9).

The upcycler and the converter used to seed identical generators, so with ``copy_jitter`` each null row
was its twin scaled by 1.01 and the initial load collapsed towards 1. With independent streams the
jitter is uncorrelated with the copied rows, and the initial load of top-k over E true + m copied nulls
is k·E/(E+m): each token takes its best expert and that expert's twin, then one of the next pair.
"""

from __future__ import annotations

import pytest
import torch

from adamoe.hf.convert import convert, routers
from adamoe.hf.tiny import tiny_model
from adamoe.hf.upcycle import upcycle_to_mixtral
from adamoe.stats import RoutingRecorder

E, M, K = 8, 8, 3
EXPECTED_LOAD = K * E / (E + M)  # 1.5
WIDE = {"hidden_size": 128, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2}


def upcycled_adamoe(seed: int) -> torch.nn.Module:
    dense = tiny_model("llama", seed=seed, head_dim=32, **WIDE)
    moe = upcycle_to_mixtral(dense, num_experts=E, top_k=2, seed=seed)
    return convert(moe, null_experts=M, top_k=K, gate2_init="copy_jitter", seed=seed)


def test_jitter_is_uncorrelated_with_the_copied_rows():
    for seed in (0, 1):
        for name, router in routers(upcycled_adamoe(seed)):
            twins = router.weight.detach().float()  # m == E: null i copies true row i
            jitter = router.gate2.detach().float() - twins
            assert 0 < float(jitter.abs().max()) < 0.05 * float(twins.abs().max())
            r = float(torch.corrcoef(torch.stack([jitter.flatten(), twins.flatten()]))[0, 1])
            assert abs(r) < 0.2, f"{name}: jitter correlates with the upcycled router rows (r={r:.3f})"


@torch.no_grad()
def test_initial_load_of_an_upcycled_model_is_k_e_over_e_plus_m():
    per_layer: dict[str, list[float]] = {}
    for seed in (0, 1, 2):
        model = upcycled_adamoe(seed)
        ids = torch.randint(0, 128, (16, 64), generator=torch.Generator().manual_seed(seed))
        with RoutingRecorder(model) as rec:
            model(ids)
        for name, s in rec.summary()["layers"].items():
            assert s["load"] == pytest.approx(EXPECTED_LOAD, abs=0.2), (seed, name)
            per_layer.setdefault(name, []).append(s["load"])
    for name, loads in per_layer.items():
        assert sum(loads) / len(loads) == pytest.approx(EXPECTED_LOAD, abs=0.1), name


# The same load on real SmolLM2 text, every layer: tests/hf/test_gate2_calibration.py.
