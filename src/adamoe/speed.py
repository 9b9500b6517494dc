"""Side-by-side MoE layer benchmarks: ours vs the dense limit vs transformers' experts backends.

Every variant of a section is timed in the same process, interleaved round-robin (so drift in the
machine's state hits all alike), and reported as the median after warm-up. Ratios, not absolute
times, are the result. Used by ``benchmarks/moe_layer.py`` and ``adamoe bench``.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from adamoe.config import ExpertsConfig, MoEConfig, RouterConfig
from adamoe.dispatch import AUTO, CANDIDATES, chosen_backends, interleaved_medians, interleaved_times
from adamoe.layer import MoELayer
from adamoe.speed_limit import limit_probes, limit_seconds, relative_noise, verdict
from adamoe.speed_model import ModelBenchSettings, bench_model, model_table


@dataclass(kw_only=True)
class BenchSettings:
    """Threads, timing rounds and shapes of every section (training shape first, then ``decode_*``)."""

    threads: int = 2
    warmup: int = 2
    repeats: int = 7
    tokens: int = 4096
    hidden: int = 1024
    ffn: int = 3584
    seed: int = 0
    decode_hidden: int = 2048
    decode_ffn: int = 1024
    decode_experts: int = 64
    decode_k: int = 8
    decode_repeats: int = 25
    quick: bool = False
    model: ModelBenchSettings = field(default_factory=ModelBenchSettings)

    def shrink(self) -> BenchSettings:
        """A tiny version for smoke tests (shapes /8, fewer repeats)."""
        return replace(
            self,
            warmup=1,
            repeats=3,
            tokens=512,
            hidden=128,
            ffn=448,
            decode_hidden=256,
            decode_ffn=128,
            decode_experts=16,
            decode_k=4,
            decode_repeats=5,
            quick=True,
            model=self.model.shrink(),
        )


def moe_layer(
    s: BenchSettings, *, num_experts: int, num_null: int, top_k: int, backend: str, hidden: int, ffn: int
) -> MoELayer:
    torch.manual_seed(s.seed)
    cfg = MoEConfig(
        hidden_size=hidden,
        router=RouterConfig(num_experts=num_experts, num_null=num_null, top_k=top_k),
        experts=ExpertsConfig(intermediate_size=ffn, backend=backend),
    )
    return cfg.build()


@torch.no_grad()
def _copy_into_nulls(base: MoELayer, target: MoELayer) -> None:
    """Give ``target`` (E true + m = E null experts) ``base``'s experts and router rows, copied again for the
    nulls (AdaMoE's gate2 init), so the two layers differ only by their null experts."""
    num_experts = base.router.num_experts
    target.experts.load_state_dict(base.experts.state_dict())
    target.router.weight[:num_experts].copy_(base.router.weight)
    target.router.weight[num_experts:].copy_(base.router.weight)


def _hf_block(layer: MoELayer, *, top_k: int, implementation: str) -> torch.nn.Module:
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    e = layer.experts
    config = MixtralConfig(
        hidden_size=e.hidden_size,
        intermediate_size=e.intermediate_size,
        num_local_experts=e.num_experts,
        num_experts_per_tok=top_k,
        experts_implementation=implementation,
    )
    block = MixtralSparseMoeBlock(config)
    with torch.no_grad():
        block.gate.weight.copy_(layer.router.weight[: e.num_experts])
        block.experts.gate_up_proj.copy_(e.gate_up_proj)
        block.experts.down_proj.copy_(e.down_proj)
    return block


def train_step_fn(module: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        module.zero_grad(set_to_none=True)
        xi = x.detach().requires_grad_(True)
        out = module(xi)
        out.backward(grad)

    return step


def bench_training(s: BenchSettings) -> dict[str, Any]:
    """Mixtral-like block, top-2, forward+backward: ours (default and each backend) vs transformers'
    backends vs the limit of :mod:`adamoe.speed_limit`, whose probes run in the same interleaved rounds."""
    torch.manual_seed(s.seed)
    x = torch.randn(s.tokens, s.hidden)
    grad = torch.randn(s.tokens, s.hidden)
    ours = moe_layer(s, num_experts=8, num_null=0, top_k=2, backend=AUTO, hidden=s.hidden, ffn=s.ffn)
    with torch.no_grad():
        ours(x)
        counts = ours.last_routing.expert_counts()
    probes = limit_probes(
        tokens=s.tokens,
        hidden=s.hidden,
        ffn=s.ffn,
        num_experts=8,
        top_k=2,
        largest_group=int(counts.max()),
        probe_mb=16 if s.quick else 512,
    )
    variants: dict[str, Callable[[], Any]] = {"adamoe_default": train_step_fn(ours, x, grad)}
    for backend in CANDIDATES:
        fixed = copy.deepcopy(ours)
        fixed.experts.backend = backend
        variants[f"adamoe_{backend}"] = train_step_fn(fixed, x, grad)
    for impl in ("grouped_mm", "eager"):
        variants[f"hf_{impl}"] = train_step_fn(
            _hf_block(ours, top_k=2, implementation=impl), x.unsqueeze(0), grad.unsqueeze(0)
        )
    times = interleaved_times({**probes.fns, **variants}, warmup=s.warmup, repeats=s.repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    limit = limit_seconds(probes, med)
    probe_noise = max(relative_noise(times[k]) for k in probes.fns)
    ratios = {k: med[k] / limit["limit_seconds"] for k in variants}
    verdicts = {k: verdict(r, relative_noise(times[k]) + probe_noise) for k, r in ratios.items()}
    best_hf = min(med["hf_grouped_mm"], med["hf_eager"])
    return {
        "shape": {"tokens": s.tokens, "hidden": s.hidden, "ffn": s.ffn, "experts": 8, "top_k": 2},
        "seconds": {k: med[k] for k in variants},
        "probe_seconds": {k: med[k] for k in probes.fns},
        "limit": limit,
        "ratio_to_limit": ratios,
        "verdict": verdicts,
        "limit_broken": [k for k, v in verdicts.items() if v.startswith("LIMIT")],
        "default_vs_best_hf": med["adamoe_default"] / best_hf,
        "default_backend": _choices(),
        "target": {"adamoe_default": 1.05},
    }


def _choices() -> dict[str, dict[str, str]]:
    """The default backend's cached choices (bucket -> backend and why), for the report."""
    return {k: {"backend": c.backend, "reason": c.reason} for k, c in chosen_backends().items()}


def bench_null_saving(s: BenchSettings) -> dict[str, Any]:
    """E=8, top-2 vs E=8 + m=8 nulls, top-3 at the training shape: wall-clock ratio vs load ratio."""
    torch.manual_seed(s.seed)
    x = torch.randn(s.tokens, s.hidden)
    grad = torch.randn(s.tokens, s.hidden)
    top2 = moe_layer(s, num_experts=8, num_null=0, top_k=2, backend=AUTO, hidden=s.hidden, ffn=s.ffn)
    ada = moe_layer(s, num_experts=8, num_null=8, top_k=3, backend=AUTO, hidden=s.hidden, ffn=s.ffn)
    _copy_into_nulls(top2, ada)
    with torch.no_grad():
        ada(x)
        ada_load = ada.last_routing.load()
    med = interleaved_medians(
        {"top2": train_step_fn(top2, x, grad), "adamoe_m8k3": train_step_fn(ada, x, grad)},
        warmup=s.warmup,
        repeats=s.repeats,
    )
    load_ratio = ada_load / 2.0
    time_ratio = med["adamoe_m8k3"] / med["top2"]
    return {
        "seconds": med,
        "load": {"top2": 2.0, "adamoe_m8k3": ada_load},
        "load_ratio": load_ratio,
        "time_ratio": time_ratio,
        "target": "time_ratio <= load_ratio + 0.03",
        "met": time_ratio <= load_ratio + 0.03,
    }


def bench_decode(s: BenchSettings) -> dict[str, Any]:
    """OLMoE-like decode (E=64, top-8), forward only, 1 and 8 tokens: memory-bound vs bandwidth limit.

    The bandwidth is measured in the same interleaved rounds (a streaming read of a large buffer), so
    the limit and the kernels see the same machine state.
    """
    torch.manual_seed(s.seed)
    E, k = s.decode_experts, s.decode_k
    dims = {"hidden": s.decode_hidden, "ffn": s.decode_ffn}
    ours = moe_layer(s, num_experts=E, num_null=0, top_k=k, backend=AUTO, **dims)
    ours_null = moe_layer(s, num_experts=E, num_null=E, top_k=k, backend=AUTO, **dims)
    _copy_into_nulls(ours, ours_null)
    hf = {impl: _hf_block(ours, top_k=k, implementation=impl) for impl in ("grouped_mm", "eager")}
    bytes_per_expert = ours.experts.gate_up_proj[0].numel() * 4 + ours.experts.down_proj[0].numel() * 4
    probe = torch.ones(((1 << 26) if s.quick else (1 << 30)) // 4)
    variants = {"adamoe": ours, "adamoe_null": ours_null, **{f"hf_{impl}": b for impl, b in hf.items()}}
    rows = [
        _decode_row(s, torch.randn(tokens, s.decode_hidden), variants, probe, bytes_per_expert)
        for tokens in (1, 8)
    ]
    return {
        "bandwidth_GBps": min(r["bandwidth_GBps"] for r in rows),
        "bytes_per_expert": bytes_per_expert,
        "skinny_kernel": _kernel_available(),
        "rows": rows,
        "target": 1.15,
    }


def _decode_row(
    s: BenchSettings,
    x: torch.Tensor,
    variants: dict[str, torch.nn.Module],
    probe: torch.Tensor,
    bytes_per_expert: int,
) -> dict[str, Any]:
    """One decode step of (tokens, H) ``x`` through every variant, timed against the bandwidth limit.

    The limit is the time to read the weights of the distinct experts the step touches (true experts
    only for ``adamoe_null``) at the bandwidth ``probe.sum`` measures in the same rounds.
    """
    ours, ours_null = variants["adamoe"], variants["adamoe_null"]
    with torch.no_grad():
        ours(x)
        distinct = int(ours.last_routing.indices.unique().numel())
        ours_null(x)
        nr = ours_null.last_routing
        distinct_null = int(nr.indices[nr.true_mask()].unique().numel())
    fns: dict[str, Callable[[], Any]] = {
        "read_probe": probe.sum,
        "adamoe": lambda: ours(x),
        "adamoe_null": lambda: ours_null(x),
    }
    for name, block in variants.items():
        if name.startswith("hf_"):
            fns[name] = lambda block=block: block(x.unsqueeze(0))
    with torch.no_grad():
        med = interleaved_medians(fns, warmup=s.warmup + 2, repeats=s.decode_repeats)
    bandwidth = probe.numel() * 4 / med.pop("read_probe")
    limit = distinct * bytes_per_expert / bandwidth
    limit_null = distinct_null * bytes_per_expert / bandwidth
    ratios = {k: v / limit for k, v in med.items() if k != "adamoe_null"}
    ratios["adamoe_null"] = med["adamoe_null"] / max(limit_null, 1e-12)
    return {
        "tokens": x.shape[0],
        "bandwidth_GBps": bandwidth / 1e9,
        "distinct_experts": distinct,
        "distinct_true_experts_null": distinct_null,
        "seconds": med,
        "limit_seconds": limit,
        "ratio_to_limit": ratios,
        "ours_vs_best_hf": med["adamoe"] / min(med["hf_grouped_mm"], med["hf_eager"]),
    }


def _kernel_available() -> bool:
    from adamoe.experts import kernels

    return kernels.available()


def run_all(
    s: BenchSettings, *, sections: tuple[str, ...] = ("training", "null_saving", "decode")
) -> dict[str, Any]:
    """Run the named sections with ``s.threads`` torch threads; the results by section, plus the choices
    the default (``auto``) backend made on the way."""
    torch.set_num_threads(s.threads)
    out: dict[str, Any] = {"threads": s.threads, "torch": torch.__version__}
    runners = {
        "training": bench_training,
        "null_saving": bench_null_saving,
        "decode": bench_decode,
        "model": lambda s: bench_model(s.model, threads=s.threads),
    }
    for name in sections:
        out[name] = runners[name](s)
    out["default_backend"] = _choices()
    return out


def format_table(result: dict[str, Any]) -> str:
    """Markdown tables of the measured ratios."""
    lines: list[str] = []
    if "training" in result:
        lines += _training_table(result["training"])
    if "null_saving" in result:
        ns = result["null_saving"]
        lines += [
            "",
            "### AdaMoE saving (E=8+m=8 top-3 vs top-2, fwd+bwd)",
            "| variant | ms | load |",
            "|---|---:|---:|",
        ]
        for k, v in ns["seconds"].items():
            lines.append(f"| {k} | {v * 1e3:.1f} | {ns['load'][k]:.3f} |")
        lines.append(
            f"time ratio {ns['time_ratio']:.3f} vs load ratio {ns['load_ratio']:.3f} (target: ≤ load + 0.03; met: {ns['met']})"
        )
    if "decode" in result:
        de = result["decode"]
        bws = ", ".join(f"{r['bandwidth_GBps']:.1f}" for r in de["rows"])
        lines += [
            "",
            f"### Decode (forward; read bandwidth measured interleaved: {bws} GB/s)",
            "| tokens | distinct experts | variant | ms | × bandwidth limit |",
            "|---:|---:|---|---:|---:|",
        ]
        for row in de["rows"]:
            for k, v in row["seconds"].items():
                n = row["distinct_true_experts_null"] if k == "adamoe_null" else row["distinct_experts"]
                lines.append(
                    f"| {row['tokens']} | {n} | {k} | {v * 1e3:.2f} | {row['ratio_to_limit'][k]:.3f} |"
                )
    if "model" in result:
        lines += ["", *model_table(result["model"])]
    if "default_backend" in result:
        lines += ["", "### Default backend (`auto`): choice per shape bucket", "| bucket | backend | why |"]
        lines.append("|---|---|---|")
        lines += [f"| {k} | {v['backend']} | {v['reason']} |" for k, v in result["default_backend"].items()]
    return "\n".join(lines)


def _training_table(tr: dict[str, Any]) -> list[str]:
    lim = tr["limit"]
    lines = [
        "### Training shape (fwd+bwd, fp32)",
        f"limit {lim['limit_seconds'] * 1e3:.1f} ms = {lim['total_GFLOP']:.1f} GFLOP at the peak measured GEMM "
        f"{lim['peak_gemm_GFLOPs']:.1f} GFLOP/s ({lim['gemm_seconds'] * 1e3:.1f} ms) + {lim['elementwise_GB']:.3f} GB "
        f"element-wise at {lim['peak_bandwidth_GBps']:.1f} GB/s ({lim['elementwise_seconds'] * 1e3:.1f} ms)",
        "",
        "| variant | ms | × limit |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {v * 1e3:.1f} | {tr['verdict'][k]} |" for k, v in tr["seconds"].items()]
    lines.append(f"default vs transformers' best: {tr['default_vs_best_hf']:.3f}×")
    if tr["limit_broken"]:
        lines.append(
            f"**The limit is broken** by {', '.join(tr['limit_broken'])}: its model misses a faster path."
        )
    return lines
