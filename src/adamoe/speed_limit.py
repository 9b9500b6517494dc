"""The training-shape limit: a time no MoE variant can beat, built from probes timed in the same rounds.

Issue 12: the old "dense limit" (one dense SwiGLU chain through autograd over the T*k active rows) was
beaten by every variant, because it paid autograd's chunk/copy/allocation overheads the grouped
kernels avoid. This limit is made only of quantities a variant cannot undercut:

- **GEMMs**: a SwiGLU MoE forward+backward over N = T*k routed rows (any split into expert groups) does
  ``18·N·H·I`` FLOPs (gate_up 4NHI and down 2NHI forward; twice that backward) plus the router's
  ``6·T·H·E``. Each of the six GEMM shapes is timed as ONE ``torch.mm`` over all N rows (the largest
  possible GEMM), and so is the forward gate_up GEMM at the largest expert group's size (the shape the
  variants really run); the limit uses the best throughput of them all.
- **Element-wise passes** no kernel set here avoids: the SiLU-gate forward (reads 2NI, writes NI) and
  backward (reads 3NI, writes 2NI), the gather of the N routed rows and the weighted scatter back to T
  tokens, forward and backward (6NH + 2TH values), at the best of a streaming read and a copy measured
  in the same rounds.

``limit = FLOPs / peak GEMM throughput + bytes / peak bandwidth``. Ratios below 1 by more than the
rounds' noise mean the model misses a way to go faster: the bench then says the limit is broken.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["LimitProbes", "limit_probes", "limit_seconds", "relative_noise", "verdict"]

MIN_TOLERANCE = 0.01
"""Smallest relative shortfall below the limit treated as a broken limit rather than noise."""


@dataclass(kw_only=True)
class LimitProbes:
    """Probe callables (to time interleaved with the variants) and the work each one and the limit does.

    ``flops[name]`` / ``bytes[name]``: the work of one call of probe ``name`` (GEMM or bandwidth probe);
    ``total_flops`` and ``total_bytes``: the work of one forward+backward of the MoE layer.
    """

    fns: dict[str, Callable[[], Any]]
    flops: dict[str, float]
    bytes: dict[str, float]
    total_flops: float
    total_bytes: float


def limit_probes(
    *, tokens: int, hidden: int, ffn: int, num_experts: int, top_k: int, largest_group: int, probe_mb: int
) -> LimitProbes:
    """The probes for a (T=tokens, H=hidden, I=ffn) SwiGLU MoE layer, E experts, top-k, fp32.

    ``largest_group``: rows of the most loaded expert in the variants' routing; ``probe_mb``: size of the
    bandwidth probe buffer (well above the last-level cache for a real measurement).
    """
    n, h, i = tokens * top_k, hidden, ffn
    gen = torch.Generator().manual_seed(0)
    x, go = torch.randn(n, h, generator=gen), torch.randn(n, h, generator=gen)
    w_gu, w_d = torch.randn(2 * i, h, generator=gen), torch.randn(h, i, generator=gen)
    gu, hid = torch.empty(n, 2 * i), torch.randn(n, i, generator=gen)
    out_gu_w, out_d_w = torch.empty(2 * i, h), torch.empty(h, i)
    out_h, out_x = torch.empty(n, h), torch.empty(n, h)
    rows = max(1, min(largest_group, n))
    shapes: dict[str, tuple[Callable[[], Any], float]] = {
        "gemm_gate_up": (lambda: torch.mm(x, w_gu.t(), out=gu), 2.0 * n * h * 2 * i),
        "gemm_down": (lambda: torch.mm(hid, w_d.t(), out=out_h), 2.0 * n * i * h),
        "gemm_grad_hidden": (lambda: torch.mm(go, w_d, out=hid), 2.0 * n * h * i),
        "gemm_grad_down": (lambda: torch.mm(go.t(), hid, out=out_d_w), 2.0 * n * h * i),
        "gemm_grad_rows": (lambda: torch.mm(gu, w_gu, out=out_x), 2.0 * n * 2 * i * h),
        "gemm_grad_gate_up": (lambda: torch.mm(gu.t(), x, out=out_gu_w), 2.0 * n * 2 * i * h),
        "gemm_expert_gate_up": (lambda: torch.mm(x[:rows], w_gu.t(), out=gu[:rows]), 2.0 * rows * h * 2 * i),
    }
    numel = probe_mb * (1 << 20) // 4
    src, dst = torch.ones(numel), torch.empty(numel)
    fns = {name: fn for name, (fn, _) in shapes.items()}
    fns["bandwidth_read"] = src.sum
    fns["bandwidth_copy"] = lambda: dst.copy_(src)
    elementwise = (8 * n * i + 6 * n * h + 2 * tokens * h) * 4.0
    return LimitProbes(
        fns=fns,
        flops={name: f for name, (_, f) in shapes.items()},
        bytes={"bandwidth_read": numel * 4.0, "bandwidth_copy": 2 * numel * 4.0},
        total_flops=18.0 * n * h * i + 6.0 * tokens * h * num_experts,
        total_bytes=elementwise,
    )


def limit_seconds(probes: LimitProbes, seconds: dict[str, float]) -> dict[str, float]:
    """The limit from the probes' measured (median) ``seconds``, with its parts."""
    gemm = max(f / seconds[name] for name, f in probes.flops.items())
    bandwidth = max(b / seconds[name] for name, b in probes.bytes.items())
    gemm_s, bytes_s = probes.total_flops / gemm, probes.total_bytes / bandwidth
    return {
        "limit_seconds": gemm_s + bytes_s,
        "gemm_seconds": gemm_s,
        "elementwise_seconds": bytes_s,
        "peak_gemm_GFLOPs": gemm / 1e9,
        "peak_bandwidth_GBps": bandwidth / 1e9,
        "total_GFLOP": probes.total_flops / 1e9,
        "elementwise_GB": probes.total_bytes / 1e9,
    }


def relative_noise(samples: list[float]) -> float:
    """Median absolute deviation over the median: the spread of one variant's rounds."""
    med = statistics.median(samples)
    return statistics.median(abs(s - med) for s in samples) / med if med > 0 else 0.0


def verdict(ratio: float, noise: float) -> str:
    """How a variant's time/limit ``ratio`` reads: a ratio, ``≥1 within noise`` or ``LIMIT BROKEN``.

    ``noise`` is the combined relative noise of the variant and the limit; a shortfall beyond
    ``max(MIN_TOLERANCE, 2·noise)`` means the limit's model is wrong, so no ratio < 1 is printed.
    """
    if ratio >= 1.0:
        return f"{ratio:.3f}"
    if ratio >= 1.0 - max(MIN_TOLERANCE, 2.0 * noise):
        return f"≥1 within noise ({ratio:.3f})"
    return f"LIMIT BROKEN ({ratio:.3f})"
