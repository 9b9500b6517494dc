"""The profiling sections (``adamoe.bench.profile``, ``adamoe.bench.profile_ops``): the op classifier against a hand-built
table, the category sums (also of a hand-built compiled profile: our routed op, inductor's graph, dynamo),
the GEMM FLOP split against a hand count, and a toy run of every section and of the CLI (its prefill with
the compiled variants). Nothing here compares two timings."""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from adamoe.bench.limit import SWIGLU_GEMMS as GEMM_SHAPES
from adamoe.bench.profile import decode_bounds, gemm_shape_rates, profile_table
from adamoe.bench.profile_ops import (
    CATEGORIES,
    NORM_SCOPE,
    OP_CATEGORIES,
    OpTime,
    category_ms,
    classify,
    gap_ms,
    label,
    op_times,
    profile_prefill,
    profiled_ops,
    routed_op_ms,
)
from adamoe.bench.provenance import PROVENANCE_FIELDS
from adamoe.bench.settings import BENCH_TESTBED, BenchSettings
from adamoe.experts import kernels
from adamoe.hf.models import ModelSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "in_norm", "expected"),
    [
        ("aten::mm", False, "gemm"),
        ("aten::addmm", False, "gemm"),
        ("aten::linear", False, "gemm"),
        ("aten::matmul", False, "gemm"),
        ("aten::bmm", False, "gemm"),
        ("aten::_grouped_mm", False, "gemm"),
        ("aten::addmm", True, "gemm"),  # a GEMM stays a GEMM wherever it runs
        ("aten::scaled_dot_product_attention", False, "attention"),
        ("aten::_scaled_dot_product_flash_attention_for_cpu", False, "attention"),
        ("aten::_softmax", False, "attention"),
        ("aten::softmax", False, "attention"),
        ("aten::mul", False, "elementwise"),
        ("aten::mul_", False, "elementwise"),  # in-place variant
        ("aten::silu", False, "elementwise"),
        ("aten::neg", False, "elementwise"),
        ("aten::cat", False, "elementwise"),
        ("aten::pow", False, "elementwise"),
        ("aten::rsqrt", False, "elementwise"),
        ("aten::mean", False, "elementwise"),
        ("aten::rsqrt", True, "norm"),  # inside an RMSNorm module
        ("aten::_to_copy", True, "norm"),
        ("aten::view", True, "norm"),
        ("aten::native_layer_norm", False, "norm"),
        ("aten::rms_norm", False, "norm"),
        ("aten::topk", False, "dispatch"),
        ("aten::sort", False, "dispatch"),
        ("aten::argsort", False, "dispatch"),
        ("aten::index_select", False, "dispatch"),
        ("aten::index_add_", False, "dispatch"),
        ("aten::_index_put_impl_", False, "dispatch"),
        ("aten::scatter_add_", False, "dispatch"),
        ("aten::gather", False, "dispatch"),
        ("aten::bincount", False, "dispatch"),
        ("aten::cumsum", False, "dispatch"),
        ("aten::nonzero", False, "dispatch"),
        ("aten::copy_", False, "copy"),
        ("aten::contiguous", False, "copy"),
        ("aten::view", False, "other"),
        ("aten::empty", False, "other"),
        ("aten::embedding", False, "other"),
        ("somelib::custom_op", False, "other"),
        ("adamoe::moe_routed_swiglu", False, "routed_op"),
        ("transformers::grouped_mm_fallback", False, "gemm"),  # its self time: the loop over the groups
        ("## Call CompiledFxGraph fhddv6juvggpkwmcd4 ##", False, "compiled"),
        ("Torch-Compiled Region: 0/1", False, "dynamo"),
        ("TorchDynamo Cache Lookup", False, "dynamo"),
        ("Pregraph bytecode", False, "dynamo"),
        ("AOTDispatcher Runtime Wrapper Prologue", False, "dynamo"),
        ("SiLUMul", False, "other"),
    ],
)
def test_classify_hand_built_names(name, in_norm, expected):
    assert classify(name, in_norm=in_norm) == expected


@pytest.mark.parametrize("name", ["aten::mm", "aten::sort", "aten::index_add_", "aten::view", "SiLUMul"])
def test_everything_inside_the_routed_op_is_routed_op(name):
    assert classify(name, in_routed_op=True) == "routed_op"
    assert classify(name) != "routed_op"


def test_labels_drop_the_compile_keys_only():
    assert label("## Call CompiledFxGraph f3gh2lgq ##") == "## Call CompiledFxGraph ##"
    assert (
        label("Torch-Compiled Region: 1/0") == label("Torch-Compiled Region: 0/2") == "Torch-Compiled Region"
    )
    assert label("aten::mm") == "aten::mm"


def _event(name: str, self_us: float, parent: SimpleNamespace | None = None) -> SimpleNamespace:
    """A stand-in for a ``torch.profiler`` event: what :func:`op_times` reads of one."""
    return SimpleNamespace(name=name, self_cpu_time_total=self_us, cpu_parent=parent)


def test_a_hand_built_compiled_profile_puts_the_routed_op_and_its_children_in_their_own_category():
    region = _event("Torch-Compiled Region: 0/0", 50)
    graph = _event("## Call CompiledFxGraph abc ##", 400, region)
    op = _event("adamoe::moe_routed_swiglu", 200, graph)
    expert_mm = _event("aten::mm", 300, op)
    norm = _event(NORM_SCOPE, 8)
    events = [
        region,
        graph,
        _event("aten::addmm", 100, graph),
        op,
        _event("aten::sort", 30, op),
        expert_mm,
        _event("aten::resolve_conj", 1, expert_mm),  # two levels down: still inside the op
        _event("aten::index_add_", 20, op),
        _event("aten::mm", 60, graph),  # after the op, outside it
        _event("TorchDynamo Cache Lookup", 70),
        norm,
        _event("aten::mul", 5, norm),
    ]
    ops = op_times(events)
    assert [o.name for o in ops] == [e.name for e in events if e is not norm]
    got = category_ms(ops)
    want = {"gemm": 0.16, "routed_op": 0.551, "compiled": 0.4, "dynamo": 0.12, "norm": 0.005}
    assert got == pytest.approx({**dict.fromkeys(CATEGORIES, 0.0), **want, "total": 1.236})
    inside = routed_op_ms(ops)  # the same op split by its events' own names; its own self time: routed_op
    want_inside = {"routed_op": 0.2, "gemm": 0.3, "dispatch": 0.05, "other": 0.001}
    assert inside == pytest.approx({**dict.fromkeys(CATEGORIES, 0.0), **want_inside, "total": 0.551})
    prof = {
        "categories_ms": got,
        "routed_op_ms": inside,
        "predicted_ms": 0.4,  # all GEMM: no attention scores here
        "predicted_gemm_ms": 0.4,
        "predicted_attention_scores_ms": 0.0,
        "unattributed_ms": 0.1,
        "profiled_wall_ms": 1.336,
    }
    gap = gap_ms(prof, 1.5)  # the op's GEMMs count as GEMM time, not as non-GEMM work
    assert gap["gemm_rate"] == pytest.approx(0.16 + 0.3 - 0.4)
    assert gap["non_gemm_ops"] == pytest.approx(0.551 - 0.3 + 0.4 + 0.12 + 0.005)
    assert gap["total"] == pytest.approx(1.1) == sum(x for k, x in gap.items() if k != "total")


def test_the_table_only_names_known_categories():
    assert set(OP_CATEGORIES.values()) <= set(CATEGORIES)
    assert not any(op.startswith("aten::") for op in OP_CATEGORIES)


def test_category_ms_of_a_fake_profile_sums_to_its_total():
    ops = [
        OpTime(name="aten::addmm", self_ms=10.0),
        OpTime(name="aten::mm", self_ms=5.0),
        OpTime(name="aten::linear", self_ms=0.5),
        OpTime(name="aten::_softmax", self_ms=2.0),
        OpTime(name="aten::pow", self_ms=1.0, in_norm=True),
        OpTime(name="aten::mul", self_ms=1.5),
        OpTime(name="aten::topk", self_ms=0.25),
        OpTime(name="aten::copy_", self_ms=0.75),
        OpTime(name="aten::view", self_ms=0.125),
    ]
    got = category_ms(ops)
    assert got == {
        "gemm": 15.5,
        "attention": 2.0,
        "norm": 1.0,
        "elementwise": 1.5,
        "dispatch": 0.25,
        "copy": 0.75,
        "routed_op": 0.0,  # eager: no compiled call, no custom op
        "compiled": 0.0,
        "dynamo": 0.0,
        "other": 0.125,
        "total": 21.125,
    }
    assert got["total"] == sum(op.self_ms for op in ops)


@pytest.fixture(scope="module")
def tiny_dense():
    return ModelSpec.parse("tiny-qwen2").load(seed=0)[0]


def test_a_toy_profile_splits_all_its_self_time_into_categories(tiny_dense):
    ids = torch.randint(0, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    ops, wall = profiled_ops(tiny_dense, ids)
    cats = category_ms(ops)
    assert wall > 0 and cats["total"] > 0
    assert cats["total"] == pytest.approx(sum(op.self_ms for op in ops))
    assert sum(cats[c] for c in CATEGORIES) == pytest.approx(cats["total"])
    assert cats["gemm"] > 0 and cats["attention"] > 0 and cats["norm"] > 0  # RMSNorm ops seen in scope
    assert all(op.name != NORM_SCOPE for op in ops)
    for m in tiny_dense.modules():  # the norm scopes' hooks are gone
        assert not m._forward_hooks and not m._forward_pre_hooks


def _hand_flops_per_token(cfg, context: float) -> tuple[float, float]:
    """(all, attention scores) forward FLOPs per token of a dense Llama-like config, counted by hand."""
    h, nh, kv, inter = (
        cfg.hidden_size,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.intermediate_size,
    )
    hd = h // nh
    proj = 2 * (h * nh * hd + 2 * h * kv * hd + nh * hd * h)
    scores = 2 * nh * (hd + hd) * context
    mlp = 2 * 3 * h * inter
    layers = cfg.num_hidden_layers
    return layers * (proj + scores + mlp) + 2 * h * cfg.vocab_size, layers * scores


def test_profile_prefill_prediction_matches_a_hand_count(tiny_dense):
    batch, seq = 2, 8
    ids = torch.randint(0, 100, (batch, seq), generator=torch.Generator().manual_seed(1))
    res = profile_prefill(tiny_dense, ids, gemm_GFLOPs=2.0)  # a made-up rate: 2e9 FLOP/s
    total, scores = _hand_flops_per_token(tiny_dense.config, (seq + 1) / 2)
    assert res["load"] == 0.0  # dense
    assert res["predicted_ms"] == pytest.approx(total * batch * seq / 2e9 * 1e3)
    assert res["predicted_attention_scores_ms"] == pytest.approx(scores * batch * seq / 2e9 * 1e3)
    assert res["predicted_gemm_ms"] == pytest.approx(
        res["predicted_ms"] - res["predicted_attention_scores_ms"]
    )
    assert res["ops_total_ms"] == pytest.approx(sum(res["categories_ms"].values()))
    assert res["unattributed_ms"] == pytest.approx(res["profiled_wall_ms"] - res["ops_total_ms"])
    assert res["top_ops"] and all(cat in CATEGORIES for _, _, cat in res["top_ops"])


T, H, FFN, E, K = 16, 8, 12, 8, 2


@pytest.fixture(scope="module")
def training():
    s = BenchSettings(threads=1, warmup=0, repeats=2, tokens=T, hidden=H, ffn=FFN, quick=True)
    return gemm_shape_rates(s, num_experts=E, top_k=K)


def test_gemm_flops_split_18_n_h_i_over_the_six_shapes(training):
    n = T * K
    hand = {
        "gemm_gate_up": 4 * n * H * FFN,  # (n, H) @ (H, 2I)
        "gemm_down": 2 * n * FFN * H,
        "gemm_grad_hidden": 2 * n * H * FFN,
        "gemm_grad_down": 2 * n * H * FFN,
        "gemm_grad_rows": 4 * n * FFN * H,
        "gemm_grad_gate_up": 4 * n * FFN * H,
    }
    shapes = training["shapes"]
    assert tuple(shapes) == GEMM_SHAPES
    assert {k: v["flops"] for k, v in shapes.items()} == hand
    assert {k: v["grouped_flops"] for k, v in shapes.items()} == hand  # the groups hold all N rows
    assert sum(hand.values()) == 18 * n * H * FFN
    assert sum(training["group_rows"]) == n and len(training["group_rows"]) == E
    assert training["limit"]["total_GFLOP"] == pytest.approx((18 * n * H * FFN + 6 * T * H * E) / 1e9)


def test_training_toy_run_is_positive_and_its_prediction_adds_up(training):
    for v in training["shapes"].values():
        assert min(v["big_seconds"], v["grouped_seconds"], v["big_GFLOPs"], v["grouped_GFLOPs"]) > 0
    times, lim = training["times"], training["limit"]
    # the limit per round: nine GEMM probes + the copy of B bytes (B = 19456 here, a multiple of 8, so the
    # copy moves exactly B and the element-wise part is the copy's own time)
    router = ("gemm_router", "gemm_router_grad_input", "gemm_router_grad_weight")
    assert lim["elementwise_GB"] * 1e9 == 4 * (8 * T * K * FFN + 6 * T * K * H + 2 * T * H) == 19456
    for r, limit_r in enumerate(lim["per_round"]):
        gemms = sum(times[f"big:{g}"][r] for g in (*GEMM_SHAPES, *router))
        assert limit_r == pytest.approx(gemms + times["big:copy_elementwise_bytes"][r])
    # the grouped prediction per round: the limit with its six expert GEMMs swapped for per-group sums
    grouped = [
        limit_r
        - sum(times[f"big:{g}"][r] for g in GEMM_SHAPES)
        + sum(times[f"grouped:{g}"][r] for g in GEMM_SHAPES)
        for r, limit_r in enumerate(lim["per_round"])
    ]
    assert training["predicted_grouped_seconds"] == pytest.approx(statistics.median(grouped))
    assert training["layer_seconds"] > 0
    for r in training["ratios"].values():
        assert r["low"] <= r["ratio"] <= r["high"]
    lines = profile_table({"training": training})
    assert lines[0].startswith("### Training shape") and all(any(n in x for x in lines) for n in GEMM_SHAPES)


def test_decode_toy_run_reports_every_candidate():
    s = BenchSettings(
        threads=1,
        warmup=0,
        decode_hidden=64,
        decode_ffn=32,
        decode_experts=8,
        decode_k=2,
        decode_repeats=2,
        quick=True,
    )
    before = torch.get_num_threads()
    res = decode_bounds(s)
    assert torch.get_num_threads() == before
    assert len(res["chosen_experts"]) == 2  # one token, top-2: two distinct experts
    assert res["weight_MB"] == pytest.approx(2 * (2 * 32 * 64 + 64 * 32) * 4 / 1e6)
    assert list(res["threads"]) == [1]
    names = {"layer", "blas_gemv", "read_experts_sum", "read_same_size", "read_probe"}
    built = {"kernel", "kernel_no_prefetch"} if kernels.available() else set()
    assert set(res["threads"][1]) == names | built
    for v in res["threads"][1].values():
        assert v["ms"] > 0 and v["GBps"] > 0 and v["vs_same_tensors"]["low"] <= v["vs_same_tensors"]["high"]
    same = res["threads"][1]["read_experts_sum"]["vs_same_tensors"]  # itself, round by round
    assert same["ratio"] == same["low"] == same["high"] == pytest.approx(1.0)
    table = "\n".join(profile_table({"decode": res}))
    assert table.startswith("### Decode T=1")
    if built:  # the prefetch A/B: one paired ratio of the two builds, in the same rounds
        ab = res["threads"][1]["kernel"]["vs_no_prefetch"]
        assert ab["n"] == 2 and ab["low"] <= ab["ratio"] <= ab["high"]
        assert "| 1 | kernel_no_prefetch |" in table and "Prefetch A/B" in table


@pytest.fixture(scope="module")
def cli():
    spec = importlib.util.spec_from_file_location("profile_bounds", ROOT / "benchmarks" / "profile_bounds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_prefill(cli):
    """The CLI's --quick prefill (tiny random models, compiled twins on by default), one thread."""
    return cli.run(cli.parse_args(["--quick", "--sections", "prefill", "--threads", "1"]))


EAGER = ("dense", "moe_hf_grouped_mm", "moe_adamoe", "adamoe_load1")
OURS_COMPILED = ("moe_adamoe_compiled", "adamoe_load1_compiled")


def test_prefill_toy_run_splits_the_gap_exactly(quick_prefill):
    res = quick_prefill["prefill"]
    assert set(res["variants"]) == {*EAGER, *(n + "_compiled" for n in EAGER)}
    assert res["gemm_GFLOPs"] > 0
    for v in res["variants"].values():
        gap = v["gap_ms"]
        assert gap["total"] == pytest.approx(sum(x for k, x in gap.items() if k != "total"))
        assert v["measured_ms"] > 0 and v["predicted_ms"] > 0
        assert v["categories_ms"]["gemm"] + v["routed_op_ms"]["gemm"] > 0
    lines = profile_table({"prefill": res})
    assert lines[0].startswith("### Prefill 2×8, MoE tiny random") and any(
        "Gap to the prediction" in x for x in lines
    )
    assert res["testbed"] is None


def test_quick_prefill_profiles_the_compiled_twins_after_their_first_call(quick_prefill):
    res = quick_prefill["prefill"]
    compiled = [n + "_compiled" for n in EAGER]
    assert set(res["first_calls"]) == set(res["compile"]["variants"]) == set(compiled)  # compiled before
    for name, v in res["variants"].items():
        cats, inside = v["categories_ms"], v["routed_op_ms"]
        assert inside["total"] == pytest.approx(cats["routed_op"])
        if name in compiled:
            assert cats["compiled"] > 0 and cats["dynamo"] > 0 and cats["norm"] == 0  # norms fused
        else:
            assert cats["compiled"] == cats["dynamo"] == cats["routed_op"] == 0
        if name in OURS_COMPILED:  # the experts' GEMMs and the op's own Python, all in the op
            assert cats["routed_op"] > 0 and inside["gemm"] > 0 and inside["routed_op"] > 0
        elif name in compiled:
            assert cats["routed_op"] == 0
    assert res["variants"]["moe_hf_grouped_mm_compiled"]["categories_ms"]["gemm"] > 0
    table = "\n".join(profile_table({"prefill": res}))
    assert all(f"| {name} |" in table for name in res["variants"])
    assert table.count("inside adamoe::moe_routed_swiglu") == len(OURS_COMPILED)


def test_cli_takes_the_testbed_and_keeps_the_dials_lowest_load_compiled(cli):
    _, default, _, _ = cli.settings(cli.parse_args([]))
    assert default.testbed == BENCH_TESTBED and default.compile is True
    assert default.target_loads == (1.0,) and "adamoe_load1" in default.compiled  # top-2: load 1
    _, top4, batch, seq = cli.settings(cli.parse_args(["--testbed", "core25-e8-top4", "--batch", "1"]))
    assert (top4.testbed, top4.top_k, top4.target_loads, batch, seq) == ("core25-e8-top4", 5, (2.0,), 1, 128)
    assert "adamoe_load2" in top4.compiled  # its AdaMoE row gets a compiled twin too
    assert cli.settings(cli.parse_args(["--no-compiled"]))[1].compile is False
    with pytest.raises(SystemExit):
        cli.parse_args(["--testbed", "nope"])


def test_cli_quick_decode_prints_tables_and_json(cli, capsys, tmp_path):
    out_json = tmp_path / "profile.json"
    cli.main(["--quick", "--sections", "decode", "--threads", "1", "--json-out", str(out_json)])
    printed = capsys.readouterr().out
    assert printed.startswith("### Decode T=1")
    saved = json.loads(out_json.read_text())
    assert saved["quick"] is True and set(saved) >= {"decode"} and "training" not in saved
    assert all(math.isfinite(v["GBps"]) for v in saved["decode"]["threads"]["1"].values())
    if kernels.available():  # the prefetch A/B's second build runs in the same rounds
        assert "kernel_no_prefetch" in saved["decode"]["threads"]["1"]
        assert "| 1 | kernel_no_prefetch |" in printed
    assert set(saved["provenance"]) >= set(PROVENANCE_FIELDS)
    with pytest.raises(SystemExit):
        cli.parse_args(["--sections", "training,nope"])
