"""Model-level speed (``adamoe bench --sections model``): tokens per second of whole models, beside the time
their FLOPs (prefill) or bytes (decode) predict on this machine.

Variants, all fp32, all timed in the same interleaved rounds per grid point (ratios are the result):

- ``dense``: SmolLM2-135M as shipped;
- ``moe_hf_grouped_mm``: its 8-expert MoE, testbed ``ModelBenchSettings.testbed``
  (:func:`adamoe.experiments.moe_model.build_default_moe`) under transformers' ``grouped_mm`` experts;
- ``moe_adamoe``: the same MoE converted with m=0 (our dispatch; the same function);
- ``adamoe_load<L>``: converted to AdaMoE (m=8 nulls, top-(k+1) for a top-k testbed), the compute dial
  (:mod:`adamoe.eval.dial`) set by bisection to loads k, 0.75k and 0.5k true experts per token;
- ``<name>_compiled`` (prefill only, ``ModelBenchSettings.compile``): ``torch.compile`` of the model of
  ``<name>`` (:mod:`adamoe.bench.model_compile`), paired against its eager twin and both anchors.

Prediction. Prefill: whole-model forward FLOPs (:func:`adamoe.eval.flops.forward_flops`, at the measured
load and the pass's mean context) over the throughput of a GEMM probe of the model's MLP shape at the same
token count, drawn in the same round as the forward it divides (``predicted[r] = FLOPs / rate[r]``). Decode (batch 1, greedy, KV cache; a step's time is
``(t(N new tokens) - t(1 new token)) / (N - 1)`` so the prompt's prefill cancels): the bytes a step must
read (all non-expert weights, the experts it routes to at the measured decode load, the KV cache at the
mean context) over the bandwidth of a streaming-read probe in the same round. Every ratio is paired per
round with a bootstrap 95% CI (:func:`adamoe.bench.paired.paired_ratio`); a prediction prices every
FLOP at one GEMM's rate, so it is a yardstick, not a bound. Peak memory: the process's peak resident set
during one untimed call, reset before it through ``/proc/self/clear_refs``.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adamoe.bench.model_compile import (
    SUFFIX,
    compile_lines,
    compiled_variants,
    expert_modules,
    no_recompile,
    warm_compiled,
)
from adamoe.bench.paired import fmt_ratio, paired_ratio
from adamoe.bench.settings import ModelBenchSettings, dial_name
from adamoe.bench.timing import pinned, timed_rounds

__all__ = ["bench_model", "model_table", "peak_rss", "step_bytes"]


@dataclass(kw_only=True)
class Variant:
    """A model to time; ``bias`` (AdaMoE only) is set on its dial before every call; ``compiled``: the
    ``torch.compile`` of ``model`` that is called instead (``model`` stays the eager module)."""

    model: nn.Module
    bias: float | None = None
    compiled: nn.Module | None = None

    def ready(self) -> nn.Module:
        if self.bias is not None:
            from adamoe.eval.dial import set_null_bias

            set_null_bias(self.model, self.bias)
        return self.model if self.compiled is None else self.compiled


def _load_models(ms: ModelBenchSettings) -> tuple[nn.Module, nn.Module]:
    """(dense, unconverted MoE): SmolLM2 and its cached moefied MoE (testbed ``ms.testbed``), or tiny
    random one-layer models for ``quick`` (one layer: the compiled variants' compile stays cheap)."""
    from adamoe.hf.models import ModelSpec

    if ms.quick:
        from adamoe.hf.tiny import tiny_model

        return tiny_model("qwen2", seed=ms.seed, num_hidden_layers=1), tiny_model(
            "qwen2_moe", seed=ms.seed, num_hidden_layers=1
        )
    from adamoe.experiments.moe_model import build_default_moe, resolve_testbed

    moe = build_default_moe(recipe=resolve_testbed(ms.testbed))[0]
    return ModelSpec.parse("smollm2").load(seed=ms.seed)[0], moe


def _calibration_ids(ms: ModelBenchSettings, vocab: int) -> torch.Tensor:
    from adamoe.utils.seeding import derive_generator

    gen = derive_generator(ms.seed, "bench-model-calibration")
    return torch.randint(0, vocab, (1, min(256, max(ms.seq_lens))), generator=gen)  # one row: 12+ forwards


def mean_load(model: nn.Module, run: Callable[[], Any]) -> float:
    """Mean true experts per token over every routed layer during ``run()`` (untimed)."""
    from adamoe.stats.recorders import RoutingRecorder

    with RoutingRecorder(model) as rec:
        run()
    return float(rec.summary()["load"])


def build_variants(ms: ModelBenchSettings) -> tuple[dict[str, Variant], dict[str, Any]]:
    """The variants and the AdaMoE dial search records (bias found and load reached per target)."""
    from adamoe.eval.dial import search_null_bias
    from adamoe.hf.convert import convert

    dense, moe = _load_models(ms)
    hf = copy.deepcopy(moe)
    hf.set_experts_implementation("grouped_mm")
    ours = convert(copy.deepcopy(moe), null_experts=0)
    ada = convert(moe, null_experts=ms.num_null, top_k=ms.top_k, gate2_init="copy_jitter", seed=ms.seed)
    ids = _calibration_ids(ms, ada.config.vocab_size)
    variants = {
        "dense": Variant(model=dense),
        "moe_hf_grouped_mm": Variant(model=hf),
        "moe_adamoe": Variant(model=ours),
    }
    dial: dict[str, Any] = {}
    with torch.inference_mode():
        for target in ms.target_loads:
            found = search_null_bias(
                ada, lambda m: mean_load(m, lambda: m(input_ids=ids, use_cache=False)), target_load=target
            )
            name = dial_name(target)
            variants[name] = Variant(model=ada, bias=found["bias"])
            dial[name] = {"bias": found["bias"], "calibration_load": found["load"], "target_load": target}
    return variants, dial


def measured_load(variant: Variant, run: Callable[[nn.Module], Any]) -> float:
    """Mean true experts per token of ``run(model)``, read on the eager model (also for a compiled variant:
    the recorder's callbacks would make the compiler recompile; the same tokens, the same function)."""
    variant.ready()
    model = variant.model
    from adamoe.routing.source import routing_sources

    if next(routing_sources(model), None) is None:  # dense, or transformers' own MoE: k per token
        return float(getattr(model.config, "num_experts_per_tok", 0) or 0)
    return mean_load(model, lambda: run(model))


def _gemm_probe(tokens: int, hidden: int, inter: int) -> tuple[Callable[[], Any], float]:
    a, w, out = torch.randn(tokens, hidden), torch.randn(inter, hidden), torch.empty(tokens, inter)
    return (lambda: torch.mm(a, w.t(), out=out)), 2.0 * tokens * hidden * inter


def decoder_shape(model: nn.Module) -> Any:
    from adamoe.eval.flops import DecoderShape

    return DecoderShape.from_config(model.config)


def num_null_of(model: nn.Module) -> int:
    return int((getattr(model.config, "adamoe", None) or {}).get("null_experts", 0) or 0)


def prefill_point(
    ms: ModelBenchSettings,
    variants: dict[str, Variant],
    batch: int,
    seq: int,
    dense_cfg: Any,
    *,
    threads: int,
) -> dict[str, Any]:
    """One (batch, seq) prefill: every variant and the GEMM probe in the same rotated rounds; tokens/s,
    and paired ratios to the per-round prediction, to transformers' ``grouped_mm`` (eager and compiled)
    and, for a compiled variant, to its eager twin. Compiled variants compile before the rounds."""
    from adamoe.eval.flops import forward_flops

    ids = prefill_ids(ms, variants, batch, seq)

    def forward(m: nn.Module) -> Any:
        return m(input_ids=ids, use_cache=False)

    probe, probe_flops = _gemm_probe(batch * seq, dense_cfg.hidden_size, dense_cfg.intermediate_size)
    fns: dict[str, Callable[[], Any]] = {"gemm_probe": probe}
    fns.update({name: (lambda v=v: forward(v.ready())) for name, v in variants.items()})
    with pinned(threads):  # inductor's C++ kernels keep the thread count they were compiled with
        first_calls = warm_compiled(variants, forward)
    with torch.inference_mode():
        loads = {name: measured_load(v, forward) for name, v in variants.items()}
        with no_recompile(variants):
            times = timed_rounds(fns, warmup=ms.warmup, repeats=ms.repeats, threads=threads)
    probe_t = times["gemm_probe"]
    rows = {}
    for name, v in variants.items():
        flops = forward_flops(
            decoder_shape(v.model), load=loads[name], num_null=num_null_of(v.model), context_len=(seq + 1) / 2
        )["total"] * (batch * seq)
        predicted = [flops / probe_flops * t for t in probe_t]  # FLOPs at round r's probe rate
        med = statistics.median(times[name])
        rows[name] = {
            "load": loads[name],
            "seconds": med,
            "tokens_per_s": batch * seq / med,
            "predicted_seconds": statistics.median(predicted),
            "ratio_to_predicted": paired_ratio(times[name], predicted, seed=ms.seed),
            **_paired_to_anchors(times, name, seed=ms.seed),
        }
    rate = probe_flops / statistics.median(probe_t)
    point = {"batch": batch, "seq_len": seq, "gemm_GFLOPs": rate / 1e9, "times": times, "variants": rows}
    return {**point, "compile": first_calls} if first_calls else point


def prefill_ids(ms: ModelBenchSettings, variants: dict[str, Variant], batch: int, seq: int) -> torch.Tensor:
    """The (batch, seq) token ids every variant reads at one grid point (seeded by ``seq``)."""
    vocab = min(v.model.config.vocab_size for v in variants.values())
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(ms.seed + seq))


ANCHOR = "moe_hf_grouped_mm"
"""The variant every other is paired against (and its compiled twin, when there is one)."""


def _paired_to_anchors(times: dict[str, list[float]], name: str, *, seed: int) -> dict[str, Any]:
    """``vs_hf_grouped_mm`` and ``vs_hf_grouped_mm_compiled`` (None for the anchor itself or when it is
    not timed) and, for ``<eager>_compiled``, ``vs_eager``: paired per-round ratios of ``name``'s time."""
    out: dict[str, Any] = {}
    for anchor in (ANCHOR, ANCHOR + SUFFIX):
        timed = anchor in times and anchor != name
        out[f"vs_{anchor.removeprefix('moe_')}"] = (
            paired_ratio(times[name], times[anchor], seed=seed) if timed else None
        )
    if name.endswith(SUFFIX):
        out["vs_eager"] = paired_ratio(times[name], times[name.removesuffix(SUFFIX)], seed=seed)
    return out


def step_bytes(model: nn.Module, *, load: float, context: float) -> float:
    """Bytes one batch-1 decode step reads: non-expert weights, ``load`` routed experts per MoE layer, KV."""
    experts = expert_modules(model)
    expert_ids = {id(p) for m in experts for p in m.parameters(recurse=False)}
    params = {id(p): p for p in model.parameters()}.values()
    dense_bytes = sum(p.numel() * p.element_size() for p in params if id(p) not in expert_ids)
    per_expert = [
        sum(p[0].numel() * p.element_size() for p in (m.gate_up_proj, m.down_proj)) for m in experts
    ]
    s = decoder_shape(model)
    kv = 2 * s.num_layers * s.num_kv_heads * s.qk_dim * context * 4
    return float(dense_bytes + load * sum(per_expert) + kv)


def _step_times(times: dict[str, list[float]], name: str, n: int) -> list[float]:
    """Per-round seconds per generated token: ``(t(n new)[r] - t(1 new)[r]) / (n - 1)``."""
    return [(tn - t1) / (n - 1) for tn, t1 in zip(times[f"{name}:{n}"], times[f"{name}:1"], strict=True)]


def decode_point(ms: ModelBenchSettings, variants: dict[str, Variant], *, threads: int) -> dict[str, Any]:
    """Batch-1 greedy decode with KV cache: ms per generated token beside the bytes-per-step prediction
    at the same round's read bandwidth (a ratio is ``None`` when some round's step time is not positive:
    the rounds' noise then exceeds the step)."""
    vocab = min(v.model.config.vocab_size for v in variants.values())
    prompt = torch.randint(0, vocab, (1, ms.decode_prompt), generator=torch.Generator().manual_seed(ms.seed))
    n = ms.decode_tokens

    def generate(m: nn.Module, new: int) -> Any:
        kw = {"do_sample": False, "max_new_tokens": new, "min_new_tokens": new, "pad_token_id": 0}
        return m.generate(prompt, attention_mask=torch.ones_like(prompt), **kw)

    read = torch.ones(ms.probe_mb * (1 << 20) // 4)
    fns: dict[str, Callable[[], Any]] = {"read_probe": read.sum}
    for name, v in variants.items():
        fns[f"{name}:{n}"] = lambda v=v: generate(v.ready(), n)
        fns[f"{name}:1"] = lambda v=v: generate(v.ready(), 1)
    with torch.inference_mode():
        loads = {name: measured_load(v, lambda m: generate(m, n)) for name, v in variants.items()}
        times = timed_rounds(fns, warmup=ms.warmup, repeats=ms.repeats, threads=threads)
    read_bytes = float(read.numel() * 4)
    rows = {}
    for name, v in variants.items():
        steps = _step_times(times, name, n)
        step = statistics.median(steps)
        nbytes = step_bytes(v.model, load=loads[name], context=ms.decode_prompt + n / 2)
        predicted = [nbytes / read_bytes * t for t in times["read_probe"]]  # bytes at round r's bandwidth
        rows[name] = {
            "load": loads[name],
            "seconds_per_token": step,
            "tokens_per_s": 1.0 / step if step > 0 else float("inf"),
            "predicted_seconds": statistics.median(predicted),
            "ratio_to_predicted": paired_ratio(steps, predicted, seed=ms.seed) if min(steps) > 0 else None,
        }
    bandwidth = read_bytes / statistics.median(times["read_probe"])
    return {
        "prompt": ms.decode_prompt,
        "new_tokens": n,
        "bandwidth_GBps": bandwidth / 1e9,
        "times": times,
        "variants": rows,
    }


def peak_rss(fn: Callable[[], Any]) -> dict[str, float]:
    """Peak resident set (MB) during ``fn()`` and its rise over the resident set before it.

    Linux resets the peak (``VmHWM``) when ``5`` is written to ``/proc/self/clear_refs``; elsewhere the
    process-lifetime peak of ``resource.getrusage`` is reported (then ``reset`` is False). ``fn``'s result
    stays alive until the peak is read, so at least the memory it returns is always counted (the CI
    kernel reported a zero rise for a 256 MB tensor freed before the read).
    """
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False

    def field_kb(name: str) -> float:
        if status.is_file():
            for line in status.read_text().splitlines():
                if line.startswith(name + ":"):
                    return float(line.split()[1])
        import resource

        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)

    before = field_kb("VmRSS")
    out = fn()  # kept alive until the peak is read: some kernels fold freed pages into VmHWM lazily
    peak = max(field_kb("VmHWM"), field_kb("VmRSS"))
    del out
    return {"peak_MB": peak / 1024, "rise_MB": (peak - before) / 1024, "reset": reset}


def bench_model(ms: ModelBenchSettings, *, threads: int) -> dict[str, Any]:
    """The whole section: dial search, the prefill grid (eager and compiled), decode and peak memory per
    eager variant; timing on ``threads`` pinned threads. ``testbed``: its name and routed-expert share of
    the FLOPs at load k (:func:`adamoe.experiments.testbed.routed_share`; None for the tiny models)."""
    from adamoe.experiments.testbed import routed_share

    variants, dial = build_variants(ms)
    dense_cfg = variants["dense"].model.config
    grid = [(b, s) for b in ms.batches for s in ms.seq_lens]
    compiled, compile_record = compiled_variants(ms, variants, prefill_ids(ms, variants, *grid[0]))
    timed = {**variants, **compiled}
    prefill = [prefill_point(ms, timed, b, s, dense_cfg, threads=threads) for b, s in grid]
    decode = decode_point(ms, variants, threads=threads)
    ids = torch.zeros(max(ms.batches), max(ms.seq_lens), dtype=torch.long)
    memory = {}
    with torch.inference_mode():
        for name, v in variants.items():
            memory[name] = peak_rss(lambda v=v: v.ready()(input_ids=ids, use_cache=False))
    return {
        "models": "tiny random, one layer (quick)" if ms.quick else f"SmolLM2-135M and its MoE {ms.testbed}",
        "testbed": None if ms.quick else {"name": ms.testbed, **routed_share(variants[ANCHOR].model.config)},
        "dial": dial,
        "prefill": prefill,
        "compile": compile_record,
        "decode": decode,
        "peak_memory_prefill_largest": memory,
        "settings": {k: v for k, v in vars(ms).items()},
    }


def model_table(res: dict[str, Any]) -> list[str]:
    """Markdown tables of the model section; ratios as ``value [95% CI]`` over the rounds."""
    lines = [*_prefill_lines(res), *compile_lines(res)]
    de, mem = res["decode"], res["peak_memory_prefill_largest"]
    lines += [
        "",
        f"Decode: batch 1, prompt {de['prompt']}, {de['new_tokens']} new tokens, greedy, KV cache; "
        f"read bandwidth {de['bandwidth_GBps']:.1f} GB/s (median; each ratio uses its own round's)",
        "| variant | load | tokens/s | ms/token | predicted ms | × predicted | prefill peak RSS MB (rise) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in de["variants"].items():
        rss = f"{mem[name]['peak_MB']:.0f} (+{mem[name]['rise_MB']:.0f})"
        lines.append(
            f"| {name} | {_load_text(r['load'])} | {r['tokens_per_s']:.1f} | {r['seconds_per_token'] * 1e3:.2f} | "
            f"{r['predicted_seconds'] * 1e3:.2f} | {fmt_ratio(r['ratio_to_predicted'])} | {rss} |"
        )
    return lines


def _prefill_lines(res: dict[str, Any]) -> list[str]:
    """The prefill table; the ``× hf grouped_mm compiled`` and ``× eager`` columns when something was compiled."""
    compiled = bool(res.get("compile"))
    extra = " × hf grouped_mm compiled | × eager |" if compiled else ""
    lines = [
        f"### Model level ({res['models']}; fp32; × predicted: paired per-round ratio to the prediction)",
        f"| B×S | variant | load | tokens/s | ms | predicted ms | × predicted | × hf grouped_mm |{extra}",
        "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if compiled else ""),
    ]
    for point in res["prefill"]:
        bs = f"{point['batch']}×{point['seq_len']} ({point['gemm_GFLOPs']:.0f} GFLOP/s)"
        for name, r in point["variants"].items():
            vs = [
                r["vs_hf_grouped_mm"],
                *((r["vs_hf_grouped_mm_compiled"], r.get("vs_eager")) if compiled else ()),
            ]
            cells = " | ".join(fmt_ratio(x) if x else ("anchor" if i < 2 else "–") for i, x in enumerate(vs))
            lines.append(
                f"| {bs} | {name} | {_load_text(r['load'])} | {r['tokens_per_s']:.0f} | {r['seconds'] * 1e3:.1f} | "
                f"{r['predicted_seconds'] * 1e3:.1f} | {fmt_ratio(r['ratio_to_predicted'])} | {cells} |"
            )
    return lines


def _load_text(load: float) -> str:
    return f"{load:.2f}" if load else "dense"
