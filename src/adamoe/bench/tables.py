"""Markdown tables of ``adamoe bench``'s results: every ratio as ``value [95% CI]`` over the rounds, and
the provenance (commit, machine, date, load) above them, so a pasted table carries where it came from."""

from __future__ import annotations

from typing import Any

from adamoe.bench.faults import faults_table
from adamoe.bench.model import model_table
from adamoe.bench.paired import fmt_ratio

__all__ = ["format_table", "provenance_line"]


def provenance_line(p: dict[str, Any]) -> str:
    """One line: commit (+dirty), CPU, threads, torch, UTC date and the load average before/after."""
    commit = str(p.get("commit", "unknown"))[:10] + ("+dirty" if p.get("dirty") else "")
    return (
        f"commit {commit}; {p.get('cpu_model')} ({p.get('cpus')} CPUs); {p.get('threads')} threads; "
        f"torch {p.get('torch')}; {p.get('date_utc')}; load average {p.get('load_average')} -> "
        f"{p.get('load_average_end')}"
    )


def format_table(result: dict[str, Any]) -> str:
    """Markdown tables of whichever sections ``result`` holds."""
    lines: list[str] = []
    if "provenance" in result:
        lines += [f"_{provenance_line(result['provenance'])}_", ""]
    if "training" in result:
        lines += _training_table(result["training"])
    if "null_saving" in result:
        lines += _null_saving_table(result["null_saving"])
    if "decode" in result:
        lines += _decode_table(result["decode"])
    if "model" in result:
        lines += ["", *model_table(result["model"])]
    if "faults" in result:
        lines += faults_table(result["faults"])
    if "default_backend" in result:
        lines += ["", "### Default backend (`auto`): choice per shape bucket", "| bucket | backend | why |"]
        lines.append("|---|---|---|")
        lines += [f"| {k} | {v['backend']} | {v['reason']} |" for k, v in result["default_backend"].items()]
    return "\n".join(lines)


def _training_table(tr: dict[str, Any]) -> list[str]:
    lim = tr["limit"]
    lines = [
        f"### Training shape (fwd+bwd, fp32; {tr['rounds']} rotated rounds, paired ratios [95% CI])",
        f"limit {lim['limit_seconds'] * 1e3:.1f} ms (median over rounds) = each of the 9 GEMMs at the rate of "
        f"one `mm` of its shape ({lim['gemm_seconds'] * 1e3:.1f} ms, {lim['total_GFLOP']:.1f} GFLOP, "
        f"{lim['gemm_GFLOPs']:.1f} GFLOP/s overall) + {lim['elementwise_GB']:.3f} GB element-wise at the "
        f"same round's copy bandwidth ({lim['bandwidth_GBps']:.1f} GB/s, {lim['elementwise_seconds'] * 1e3:.1f} ms)",
        "",
        "| variant | ms (median) | × limit |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {v * 1e3:.1f} | {tr['verdict'][k]} |" for k, v in tr["seconds"].items()]
    lines += [f"adamoe_default vs {k}: {fmt_ratio(v)}×" for k, v in tr["default_vs_hf"].items()]
    if "grouped_vs_torch_act" in tr:  # records from before the SiLU-gate kernels' A/B lack it
        built = "built" if tr["act_kernel_built"] else "UNAVAILABLE: both ran the torch path"
        lines.append(
            f"adamoe_grouped vs adamoe_grouped_torch_act: {fmt_ratio(tr['grouped_vs_torch_act'])}× "
            f"(SiLU-gate C++ kernels {built})"
        )
    target = tr["target"]
    lines.append(
        f"target: adamoe_default ≤ {target['adamoe_default']}× the limit (CI top); met: {target['met']}"
    )
    if tr["limit_broken"]:
        lines.append(
            f"**The limit is broken** by {', '.join(tr['limit_broken'])}: its model misses a faster path."
        )
    return lines


def _null_saving_table(ns: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"### AdaMoE saving (E=8+m=8 jittered nulls top-3 vs top-2, fwd+bwd; {ns['rounds']} rounds)",
        "| variant | ms (median) | load |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {v * 1e3:.1f} | {ns['load'][k]:.3f} |" for k, v in ns["seconds"].items()]
    lines.append(
        f"time ratio {fmt_ratio(ns['time_ratio'])} vs load ratio {ns['load_ratio']:.3f} "
        f"(target: {ns['target']}; met: {ns['met']})"
    )
    return lines


def _decode_table(de: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"### Decode (forward; × same-bytes read: paired per round against `.sum()` over the same weights; "
        f"target ≤ {de['target']})",
        "| tokens | experts read | variant | ms (median) | × same-bytes read | × probe-bandwidth limit |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for row in de["rows"]:
        for k, v in row["seconds"].items():
            n = row["distinct_true_experts_null"] if k == "adamoe_null" else row["distinct_experts"]
            lines.append(
                f"| {row['tokens']} | {n} | {k} | {v * 1e3:.2f} | {fmt_ratio(row['ratio_to_same_bytes'][k])} | "
                f"{fmt_ratio(row['ratio_to_probe_limit'][k])} |"
            )
    for row in de["rows"]:
        vs = ", ".join(f"{k} {fmt_ratio(v)}" for k, v in row["ours_vs_hf"].items())
        if "fused_vs_unfused" in row:  # records from before the fused routing lack it
            vs += f"; fused vs unfused {fmt_ratio(row['fused_vs_unfused'])}"
        lines.append(
            f"T={row['tokens']}: same-bytes read {row['read_same_GBps']:.1f} GB/s, streaming probe "
            f"{row['probe_GBps']:.1f} GB/s (medians); adamoe vs {vs}"
        )
    return lines
