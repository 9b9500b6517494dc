"""The model-level section runs end to end on tiny random models (no timing asserts), its compiled
prefill variants compute what their eager models compute and are paired against them and both anchors,
and its bytes-per-step and peak-memory helpers agree with hand counts."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace

import pytest
import torch

from adamoe.bench.model import build_variants, measured_load, peak_rss, prefill_ids, step_bytes
from adamoe.bench.model_compile import compiled_variants
from adamoe.bench.run import run_all
from adamoe.bench.settings import BenchSettings, ModelBenchSettings
from adamoe.bench.tables import format_table
from adamoe.hf.models import ModelSpec
from adamoe.routing.source import routing_sources


@pytest.fixture(scope="module")
def result():
    return run_all(BenchSettings(threads=1).shrink(), sections=("model",))


def test_quick_model_section_reports_every_variant(result):
    res = result["model"]
    names = {"dense", "moe_hf_grouped_mm", "moe_adamoe", "adamoe_load2", "adamoe_load1.5", "adamoe_load1"}
    assert len(res["prefill"]) == 2  # batches (1, 2) x seq_lens (8,)
    for point in res["prefill"]:
        rows = point["variants"]
        assert set(rows) == names | COMPILED
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


COMPILED = {
    f"{n}_compiled" for n in ("dense", "moe_hf_grouped_mm", "moe_adamoe", "adamoe_load1.5", "adamoe_load1")
}


def _geomean_ratio(a, b):
    return math.prod(x / y for x, y in zip(a, b, strict=True)) ** (1 / len(a))


def test_compiled_rows_are_paired_with_their_eager_twin_and_both_anchors(result):
    res = result["model"]
    for point in res["prefill"]:
        rows, times = point["variants"], point["times"]
        for name in COMPILED:
            eager = name.removesuffix("_compiled")
            # no load check here: a compiled row's load is read on its eager model, the very number of
            # its eager row; the dial test checks it against a count of the compiled run's own picks
            assert rows[name]["vs_eager"]["ratio"] == pytest.approx(_geomean_ratio(times[name], times[eager]))
            assert point["compile"][name]["max_abs_logit_diff"] < 1e-4
            assert point["compile"][name]["first_call_seconds"] > 0
        for name, r in rows.items():
            anchored = r["vs_hf_grouped_mm_compiled"]
            if name == "moe_hf_grouped_mm_compiled":
                assert anchored is None
                continue
            want = _geomean_ratio(times[name], times["moe_hf_grouped_mm_compiled"])
            assert anchored["ratio"] == pytest.approx(want) and anchored["low"] <= want <= anchored["high"]
            assert ("vs_eager" in r) == (name in COMPILED)
    record = res["compile"]["variants"]
    assert set(record) == COMPILED
    for name in ("dense_compiled", "moe_hf_grouped_mm_compiled"):  # no graph break: one graph
        assert (
            record[name]["graphs"] == 1
            and record[name]["fullgraph"]
            and record[name]["experts_backend"] is None
        )
    for name in ("moe_adamoe_compiled", "adamoe_load1_compiled"):
        # our routed experts are one opaque op under the compiler: no break, one graph (issue 20)
        assert record[name]["graphs"] == 1 and record[name]["fullgraph"]
        assert record[name]["experts_backend"] == "auto (eager, in adamoe::moe_routed_swiglu)"
    table = format_table(result)
    assert "| adamoe_load1_compiled |" in table and "× eager" in table and "Compiled prefill" in table


def test_compiled_adamoe_follows_the_dial_and_computes_what_its_eager_model_computes():
    """The two AdaMoE loads share one compiled module; each must compute its own load's logits (the
    section test checks every other compiled variant's logits through its recorded difference)."""
    ms = replace(ModelBenchSettings().shrink(), compiled=("adamoe_load1.5", "adamoe_load1", "absent"))
    variants, _ = build_variants(ms)
    ids = prefill_ids(ms, variants, 1, 8)
    compiled, record = compiled_variants(ms, variants, ids)
    assert set(compiled) == set(record["variants"]) == {"adamoe_load1.5_compiled", "adamoe_load1_compiled"}
    assert compiled["adamoe_load1_compiled"].compiled is compiled["adamoe_load1.5_compiled"].compiled
    logits, sources = {}, [m for _, m in routing_sources(variants["adamoe_load1"].model)]
    with torch.inference_mode():
        for name in ("adamoe_load1.5", "adamoe_load1", "adamoe_load1.5"):  # back and forth along the dial
            for source in sources:
                source.last_routing = None
            got = compiled[name + "_compiled"].ready()(input_ids=ids, use_cache=False).logits
            # the load the bench records for the compiled variant (read on its eager model) is the
            # number of true experts the compiled run itself picked per token, counted by hand
            picked = [s.last_routing for s in sources]
            by_hand = statistics.mean(
                float(((r.indices >= 0) & (r.indices < r.num_experts)).sum()) / r.indices.shape[0]
                for r in picked
            )
            forward = lambda m: m(input_ids=ids, use_cache=False)  # noqa: E731
            assert measured_load(compiled[name + "_compiled"], forward) == pytest.approx(by_hand)
            want = variants[name].ready()(input_ids=ids, use_cache=False).logits
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            logits[name] = want
    # the loads' logits differ, so a compiled module stuck at one bias would fail above
    assert not torch.allclose(logits["adamoe_load1"], logits["adamoe_load1.5"])
    assert compiled_variants(replace(ms, compile=False), variants, ids) == ({}, {})


def test_compiled_prefill_of_a_two_layer_model_warms_past_any_variants_x_points_budget(monkeypatch):
    """Where the dispatch breaks the graph (experts the compiled op does not serve, forced here by turning
    ``compiled_routed`` off), dynamo specialises it on each MoE layer's group counts, so the compiled
    AdaMoE variants put about layers x loads x grid points entries on the same code objects: at 2 layers,
    3 variants and 4 points past the old budget of variants x points + 8 (the section aborted with
    FailOnRecompileLimitHit). The warm-up has no limit, the timed rounds allow no recompile: the section
    runs, and each compiled point computes its eager model's logits. Backend ``eager``: the limits are
    dynamo's, inductor would only add compile time."""
    import adamoe.bench.model as bench
    from adamoe import dispatch
    from adamoe.experts.grouped_mm import _mm_out
    from adamoe.hf.tiny import tiny_model

    def two_layers(ms):
        return tuple(tiny_model(f, seed=ms.seed, num_hidden_layers=2) for f in ("qwen2", "qwen2_moe"))

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real_compile(model, backend="eager", **kw))
    monkeypatch.setattr(bench, "_load_models", two_layers)
    monkeypatch.setattr(dispatch, "compiled_routed", lambda hidden, routing, experts: None)
    ada = ("moe_adamoe", "adamoe_load1.5", "adamoe_load1")
    base = ModelBenchSettings().shrink()
    ms = replace(base, batches=(1, 2), seq_lens=(8, 12), target_loads=(1.5, 1.0), compiled=ada)
    res = bench.bench_model(ms, threads=1)
    old_budget = len(ada) * 4 + 8
    assert len(torch._dynamo.eval_frame._debug_get_cache_entry_list(_mm_out.__code__)) > old_budget
    assert len(res["prefill"]) == 4
    for point in res["prefill"]:
        assert set(point["compile"]) == {f"{n}_compiled" for n in ada}
        assert all(c["max_abs_logit_diff"] < 1e-4 for c in point["compile"].values())


def test_model_compile_false_removes_the_compiled_variants(tmp_path):
    from adamoe.cli import main

    argv = ["bench", "--quick", "--sections", "model", "--set", "threads=1", "--set", "repeats=2"]
    assert main([*argv, "--set", "model_compile=false", "--run-dir", str(tmp_path / "run")]) == 0
    saved = json.loads((tmp_path / "run" / "bench.json").read_text())
    assert saved["model"]["settings"]["compile"] is False and saved["model"]["compile"] == {}
    for point in saved["model"]["prefill"]:
        assert not any(name.endswith("_compiled") for name in point["variants"]) and "compile" not in point
    table = (tmp_path / "run" / "bench.md").read_text()
    assert "Model level" in table and "_compiled" not in table and "× eager" not in table


def test_load_models_builds_the_moe_of_the_settings_testbed(monkeypatch):
    """Not quick: the MoE is ``build_default_moe`` of ``ms.testbed``'s recipe (both loads replaced)."""
    import adamoe.bench.model as bench
    import adamoe.experiments.moe_model as moe_model

    asked = []
    monkeypatch.setattr(
        moe_model, "build_default_moe", lambda *, recipe: (asked.append(recipe) or "moe", 0, {})
    )
    monkeypatch.setattr(ModelSpec, "load", lambda self, *, seed: ("dense", None))
    for name, recipe in [
        ("core50-e8-top2", moe_model.MoeRecipe()),
        ("core25-e8-top4", moe_model.MoeRecipe(shared_fraction=0.25, top_k=4)),
    ]:
        asked.clear()
        assert bench._load_models(ModelBenchSettings().with_testbed(name)) == ("dense", "moe")
        assert asked == [recipe]


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
