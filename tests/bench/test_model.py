"""The model-level section runs end to end on tiny random models (no timing asserts), and its
bytes-per-step and peak-memory helpers agree with hand counts."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from adamoe.bench.model import peak_rss, step_bytes
from adamoe.bench.run import run_all
from adamoe.bench.settings import BenchSettings
from adamoe.bench.tables import format_table
from adamoe.hf.models import ModelSpec


@pytest.fixture(scope="module")
def result():
    return run_all(BenchSettings(threads=1).shrink(), sections=("model",))


def test_quick_model_section_reports_every_variant(result):
    res = result["model"]
    names = {"dense", "moe_hf_grouped_mm", "moe_adamoe", "adamoe_load2", "adamoe_load1.5", "adamoe_load1"}
    assert len(res["prefill"]) == 2  # batches (1, 2) x seq_lens (8,)
    for point in res["prefill"]:
        rows = point["variants"]
        assert set(rows) == names
        assert rows["moe_hf_grouped_mm"]["load"] == rows["moe_adamoe"]["load"] == 2.0
        probe = point["times"]["gemm_probe"]
        for name, r in rows.items():
            # paired per round: t[r] / (FLOPs / probe rate[r]); predicted[r] is proportional to probe[r]
            scale = r["predicted_seconds"] / statistics.median(probe)
            per_round = [t / (scale * p) for t, p in zip(point["times"][name], probe)]
            ratio = r["ratio_to_predicted"]
            assert ratio["ratio"] == pytest.approx(math.prod(per_round) ** (1 / len(per_round)))
            assert ratio["low"] <= ratio["ratio"] <= ratio["high"]
        assert rows["moe_hf_grouped_mm"]["vs_hf_grouped_mm"] is None  # the anchor
        # along the dial the predicted time falls with the load
        ada = sorted(
            (rows[n]["load"], rows[n]["predicted_seconds"]) for n in names if n.startswith("adamoe_")
        )
        assert [p for _, p in ada] == sorted(p for _, p in ada)
    assert set(res["decode"]["variants"]) == names
    assert set(result["provenance"]) >= {"commit", "cpu_model", "date_utc", "load_average"}
    assert set(res["peak_memory_prefill_largest"]) == names
    assert "Model level" in format_table(result) and "Decode: batch 1" in format_table(result)


def test_step_bytes_of_a_dense_model_is_every_weight_plus_the_kv_cache():
    model = ModelSpec.parse("tiny-qwen2").load()[0]
    cfg = model.config
    weights = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()) * 4
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    kv = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * 10 * 4
    assert step_bytes(model, load=0.0, context=10) == weights + kv


def test_step_bytes_counts_only_the_routed_experts_read():
    model = ModelSpec.parse("tiny-qwen2_moe").load(routed=False)[0]
    at0, at1 = step_bytes(model, load=0.0, context=1), step_bytes(model, load=1.0, context=1)
    experts = [m for m in model.modules() if type(m).__name__.endswith("Experts")]
    one_each = sum((m.gate_up_proj[0].numel() + m.down_proj[0].numel()) * 4 for m in experts)
    assert experts and at1 - at0 == one_each


def test_peak_rss_sees_a_large_allocation():
    mem = peak_rss(lambda: torch.ones(64 << 20).add_(1))  # 256 MB touched
    if mem["reset"]:
        assert mem["rise_MB"] > 200
    assert mem["peak_MB"] > 200
