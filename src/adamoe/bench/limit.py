"""The training-shape limit, re-based so that it can be met (issue 20), priced round by round.

A SwiGLU MoE forward+backward over N = T·k routed rows (T tokens, hidden H, expert width I, E experts)
does nine GEMMs whatever the split into expert groups, and element-wise passes no kernel here avoids:

- six expert GEMMs over all N rows: forward gate_up ``(N,H)x(H,2I)`` and down ``(N,I)x(I,H)``; backward
  the grad of the hidden ``(N,H)x(H,I)``, of the down weight ``(H,N)x(N,I)``, of the rows
  ``(N,2I)x(2I,H)`` and of the gate_up weight ``(2I,N)x(N,H)``: ``18·N·H·I`` FLOPs;
- three router GEMMs: logits ``(T,H)x(H,E)``, grad of the input ``(T,E)x(E,H)``, grad of the weight
  ``(E,T)x(T,H)``: ``6·T·H·E`` FLOPs;
- element-wise traffic ``B = 4·(8·N·I + 6·N·H + 2·T·H)`` bytes (fp32): SiLU-gate forward (reads 2NI,
  writes NI) and backward (reads 3NI, writes 2NI); gather of the N rows and weighted scatter back to T
  tokens, forward and backward (6NH + 2TH).

Each GEMM ``g`` is one probe: ONE plain ``torch.mm`` of exactly that shape, so its FLOPs are priced at the
rate a single ``mm`` of the same shape reaches (not at the best shape's rate, which even one plain mm
per shape missed by 5%). The element-wise bytes are priced at the bandwidth of a copy probe moving the
same B bytes (reads + writes). Every probe runs in the same rotated rounds as the variants, so

    limit[r] = sum_g t_g[r] + B / bw[r],     bw[r] = B_copy / t_copy[r]

and a variant's ratio is the paired per-round ratio ``t_variant[r] / limit[r]`` with its bootstrap CI
(:func:`adamoe.bench.paired.paired_ratio`). A grouped MoE runs the same FLOPs in smaller GEMMs and at
least these bytes, so it sits above 1; a ratio whose whole interval lies below 1 means the model misses a
faster path, and the table says **LIMIT BROKEN** instead of printing it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from adamoe.bench.paired import fmt_ratio, per_round

__all__ = [
    "COPY_PROBE",
    "ROUTER_GEMMS",
    "SWIGLU_GEMMS",
    "LimitProbes",
    "limit_probes",
    "limit_rounds",
    "router_gemms",
    "swiglu_gemms",
    "verdict",
]

SWIGLU_GEMMS = ("gemm_gate_up", "gemm_down", "gemm_grad_hidden", "gemm_grad_down", "gemm_grad_rows")
SWIGLU_GEMMS += ("gemm_grad_gate_up",)
"""The six expert GEMMs of a SwiGLU MoE forward+backward, in the order above."""
ROUTER_GEMMS = ("gemm_router", "gemm_router_grad_input", "gemm_router_grad_weight")
COPY_PROBE = "copy_elementwise_bytes"

Probe = tuple[Callable[[], Any], float]
"""A callable and the FLOPs of one call."""


@dataclass(kw_only=True)
class LimitProbes:
    """Probe callables (timed in the variants' rounds) and the work each one and the layer does.

    ``flops[g]``: FLOPs of GEMM probe ``g`` (= the layer's FLOPs for that GEMM); ``copy_bytes``: bytes
    the copy probe moves; ``total_flops`` / ``total_bytes``: one forward+backward of the layer.
    """

    fns: dict[str, Callable[[], Any]]
    flops: dict[str, float]
    copy_bytes: float
    total_flops: float
    total_bytes: float


def swiglu_gemms(*, rows: int, hidden: int, ffn: int, generator: torch.Generator) -> dict[str, Probe]:
    """The six expert GEMMs over ``rows`` rows as single ``torch.mm`` calls with ``out=`` buffers, in the
    memory layouts the grouped kernel uses (weights (2I, H) and (H, I), transposed views)."""
    n, h, i = rows, hidden, ffn
    x, go = torch.randn(n, h, generator=generator), torch.randn(n, h, generator=generator)
    w_gu, w_d = torch.randn(2 * i, h, generator=generator), torch.randn(h, i, generator=generator)
    gu, hid = torch.randn(n, 2 * i, generator=generator), torch.randn(n, i, generator=generator)
    out_gu, out_h, out_x = torch.empty(n, 2 * i), torch.empty(n, h), torch.empty(n, h)
    out_hid, out_gu_w, out_d_w = torch.empty(n, i), torch.empty(2 * i, h), torch.empty(h, i)
    return {
        "gemm_gate_up": (lambda: torch.mm(x, w_gu.t(), out=out_gu), 4.0 * n * h * i),
        "gemm_down": (lambda: torch.mm(hid, w_d.t(), out=out_h), 2.0 * n * i * h),
        "gemm_grad_hidden": (lambda: torch.mm(go, w_d, out=out_hid), 2.0 * n * h * i),
        "gemm_grad_down": (lambda: torch.mm(go.t(), hid, out=out_d_w), 2.0 * n * h * i),
        "gemm_grad_rows": (lambda: torch.mm(gu, w_gu, out=out_x), 4.0 * n * i * h),
        "gemm_grad_gate_up": (lambda: torch.mm(gu.t(), x, out=out_gu_w), 4.0 * n * i * h),
    }


def router_gemms(
    *, tokens: int, hidden: int, num_experts: int, generator: torch.Generator
) -> dict[str, Probe]:
    """The router's three GEMMs (forward logits, grad of its input, grad of its (E, H) weight)."""
    t, h, e = tokens, hidden, num_experts
    x, w = torch.randn(t, h, generator=generator), torch.randn(e, h, generator=generator)
    g = torch.randn(t, e, generator=generator)
    logits, gx, gw = torch.empty(t, e), torch.empty(t, h), torch.empty(e, h)
    flops = 2.0 * t * h * e
    return {
        "gemm_router": (lambda: torch.mm(x, w.t(), out=logits), flops),
        "gemm_router_grad_input": (lambda: torch.mm(g, w, out=gx), flops),
        "gemm_router_grad_weight": (lambda: torch.mm(g.t(), x, out=gw), flops),
    }


def elementwise_bytes(*, tokens: int, hidden: int, ffn: int, top_k: int) -> float:
    """``B = 4·(8·N·I + 6·N·H + 2·T·H)``: the fp32 element-wise bytes of one forward+backward."""
    n = tokens * top_k
    return 4.0 * (8 * n * ffn + 6 * n * hidden + 2 * tokens * hidden)


def limit_probes(*, tokens: int, hidden: int, ffn: int, num_experts: int, top_k: int) -> LimitProbes:
    """The probes for a (T=tokens, H=hidden, I=ffn) SwiGLU MoE layer, E experts, top-k, fp32: the nine
    GEMMs at full size and a copy of the layer's element-wise bytes (B/2 read, B/2 written)."""
    gen = torch.Generator().manual_seed(0)
    gemms = swiglu_gemms(rows=tokens * top_k, hidden=hidden, ffn=ffn, generator=gen)
    gemms |= router_gemms(tokens=tokens, hidden=hidden, num_experts=num_experts, generator=gen)
    total_bytes = elementwise_bytes(tokens=tokens, hidden=hidden, ffn=ffn, top_k=top_k)
    numel = max(1, int(total_bytes // 8))
    src, dst = torch.ones(numel), torch.empty(numel)
    fns = {name: fn for name, (fn, _) in gemms.items()}
    fns[COPY_PROBE] = lambda: dst.copy_(src)
    flops = {name: f for name, (_, f) in gemms.items()}
    return LimitProbes(
        fns=fns,
        flops=flops,
        copy_bytes=8.0 * numel,
        total_flops=sum(flops.values()),
        total_bytes=total_bytes,
    )


def limit_rounds(probes: LimitProbes, times: dict[str, list[float]]) -> dict[str, Any]:
    """The limit in every round (``per_round``) from the probes' per-round ``times``, with its parts
    (medians over rounds) and the formula, for the report."""
    gemm = per_round(times, *probes.flops)
    bandwidth = [probes.copy_bytes / t for t in times[COPY_PROBE]]
    elementwise = [probes.total_bytes / bw for bw in bandwidth]
    limit = [g + e for g, e in zip(gemm, elementwise, strict=True)]
    med = statistics.median
    return {
        "per_round": limit,
        "limit_seconds": med(limit),
        "gemm_seconds": med(gemm),
        "elementwise_seconds": med(elementwise),
        "gemm_GFLOPs": probes.total_flops / med(gemm) / 1e9,
        "bandwidth_GBps": med(bandwidth) / 1e9,
        "total_GFLOP": probes.total_flops / 1e9,
        "elementwise_GB": probes.total_bytes / 1e9,
        "formula": "limit[r] = sum_g t_mm(g)[r] + B / bw_copy[r]",
    }


def verdict(ratio: dict[str, Any]) -> str:
    """How a variant's paired ratio to the limit reads: ``"1.234 [1.201, 1.266]"``, or
    ``"LIMIT BROKEN (...)"`` when the whole interval lies below 1."""
    text = fmt_ratio(ratio)
    return f"LIMIT BROKEN ({text})" if ratio["high"] < 1.0 else text
