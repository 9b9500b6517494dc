"""Is the AdaMoE arms' NLL loss the option-2 x moefy scaling? A check without training (issue 17, item 2).

The moefied testbed's routed ``down_proj`` carries x k_base, so k_base equally weighted slices add up to
the dense FFN. Option 2 renormalises a token's j kept true experts to weights summing to 1, which gives
each kept slice x k_base / j; the ``scaled`` weighting multiplies option 2 by j / k_base. This script
converts the cached testbed (no fine-tuning, gate2 = the experiment's jittered copies from the seed's
``init`` stream) into each weighting at the same picks and measures the held-out per-token NLL, paired
over texts against the top-k testbed itself:

    python scripts/moe_scaling_check.py --out docs/figures/moe-scaling [--per-task 25] [--seed 0]
        [--testbed core25-e8-top4]

Writes ``scaling.json`` (per-text NLL sums and token counts per variant, loads, provenance) and
``report.md`` (the command, NLL, Δ vs top-k with a 95% bootstrap interval over texts, load).
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from adamoe.eval.estimates import stream
from adamoe.eval.significance import bootstrap_ci
from adamoe.experiments.arms import apply_weights, parse_arm
from adamoe.experiments.harness import seed_stream
from adamoe.experiments.moe_model import (
    DEFAULT_TESTBED,
    build_default_moe,
    heldout_texts,
    resolve_testbed,
    text_nlls,
)
from adamoe.hf.convert import convert
from adamoe.hf.gate2 import calibration_means
from adamoe.hf.moefy import set_top_k
from adamoe.stats.recorders import RoutingRecorder

ARMS = ("m8k5", "m8k5-scaled", "m8k5-opt1")
"""Converted beside ``top4`` (the testbed as built, converted with m = 0: same outputs, routing recorded)
and the top-3 / top-2 points of the frontier (rescaled by the k-scaling rule)."""


def _variant(moe: Any, tok: Any, name: str, *, seed: int) -> Any:
    arm = parse_arm(name)
    model = copy.deepcopy(moe)
    if arm.m == 0 and arm.k != int(model.config.num_experts_per_tok):
        set_top_k(model, arm.k)  # a top-k point of the frontier: the k-scaling rule rescales down_proj
    convert(
        model,
        null_experts=arm.m,
        top_k=arm.k,
        normalize=arm.normalize,
        gate2_init="copy_jitter",
        seed=seed_stream(seed, "init"),
        calibration=calibration_means(model, tok) if arm.m else None,
    )
    return apply_weights(model, kind=arm.kind)


def _measure(model: Any, tok: Any, texts: list[str]) -> dict[str, Any]:
    with RoutingRecorder(model) as rec:
        nll = text_nlls(model, tok, texts)
    return {**nll, "load": float(rec.summary()["load"])}


def _row(name: str, res: dict[str, Any], base: dict[str, Any], seed: int) -> str:
    per_tok = sum(res["nll"]) / sum(res["tokens"])
    if res is base:
        return f"| {name} | {per_tok:.3f} | – | {res['load']:.2f} |"
    tokens = np.asarray(base["tokens"], dtype=float)
    diff = (np.asarray(res["nll"]) - np.asarray(base["nll"])) / tokens.mean()
    est = bootstrap_ci(diff, rng=stream(seed, "scaling-check", name))
    return (
        f"| {name} | {per_tok:.3f} | {est.value:+.3f} [{est.low:+.3f}, {est.high:+.3f}] | {res['load']:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-task", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--testbed", default=DEFAULT_TESTBED)
    args = ap.parse_args(argv)
    moe, tok, record = build_default_moe(recipe=resolve_testbed(args.testbed))
    texts = heldout_texts(args.per_task)
    results = {}
    for name in ("top4", "top3", "top2", *ARMS):
        results[name] = _measure(_variant(moe, tok, name, seed=args.seed), tok, texts)
    base = results["top4"]
    command = "python scripts/moe_scaling_check.py " + " ".join(sys.argv[1:] if argv is None else argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    lines = [
        f"Command: `{command}` (commit {commit.strip()}); {len(texts)} held-out texts, "
        f"{int(sum(base['tokens']))} tokens; no fine-tuning.",
        "",
        "| variant | NLL (nats/token) | Δ vs top-k [95% CI over texts] | load |",
        "|---|---:|---:|---:|",
        *(_row(n, r, base, args.seed) for n, r in results.items()),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / "scaling.json.tmp"
    tmp.write_text(json.dumps({"command": command, "testbed": record.get("recipe"), "results": results}))
    tmp.replace(args.out / "scaling.json")
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
