"""The report's detail tables and lists: routing per stage (drift vs a matched reference), refusal per
category, notes on sources and skipped attacks, and a few model outputs per dimension."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adamoe.rbench.report.values import DASH, delta, num, pct

__all__ = [
    "ROUTING_HEADERS",
    "attack_lines",
    "example_lines",
    "note_lines",
    "routing_rows",
    "safety_category_table",
]


def routing_rows(result: Mapping[str, Any], dim: str) -> list[list[str]]:
    """(model, stage, reference, tokens, load, Δload, entropy, Δentropy, JS mean, JS max, p Holm, verdict)
    rows; dense models get dashes. The verdict reads "within noise" when the permutation test of the
    stage against its matched reference is not significant after Holm (`adamoe.rbench.drift`)."""
    rows = []
    for m in result["models"]:
        routing = result["results"][m]["dims"][dim].get("routing")
        if not routing:
            rows.append([m] + [DASH] * (len(ROUTING_HEADERS) - 1))
            continue
        refs = set(routing.get("references", ()))
        for stage, s in routing["stages"].items():
            sh = routing["shift"].get(stage)
            label = f"{stage} (ref)" if stage in refs else stage
            rows.append(
                [
                    m,
                    label,
                    sh["reference"] if sh else DASH,
                    str(int(s.get("tokens", 0))),
                    num(s["load"]),
                    delta(sh["delta_load"]) if sh else DASH,
                    num(s["entropy"]),
                    delta(sh["delta_entropy"]) if sh else DASH,
                    num(sh["js_mean"], ".2e") if sh else DASH,
                    num(sh["js_max"], ".2e") if sh else DASH,
                    num(sh.get("p_holm"), ".3f") if sh else DASH,
                    _verdict(sh.get("within_noise")) if sh else DASH,
                ]
            )
    return rows


ROUTING_HEADERS = [
    "model",
    "stage",
    "vs",
    "tokens",
    "load",
    "Δload vs ref",
    "router entropy",
    "Δentropy",
    "JS mean (bits)",
    "JS max (bits)",
    "p (Holm)",
    "drift",
]


def _verdict(within: bool | None) -> str:
    if within is None:
        return DASH
    return "within noise" if within else "above noise"


def safety_category_table(result: Mapping[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Refusal rate per harmful-prompt category and model; None with fewer than two categories."""
    models = result["models"]
    cats: list[str] = []
    for m in models:
        for c in result["results"][m]["dims"]["safety"]["details"].get("refusal_by_category", {}):
            if c not in cats:
                cats.append(c)
    if len(cats) < 2:
        return None
    rows = [
        [
            c,
            *[
                pct(result["results"][m]["dims"]["safety"]["details"]["refusal_by_category"].get(c))
                for m in models
            ],
        ]
        for c in cats
    ]
    return ["category", *[f"{m} refusal %" for m in models]], rows


def note_lines(result: Mapping[str, Any], dim: str) -> list[str]:
    """Per-dimension notes: skipped attacks, data sources, judges."""
    notes = []
    for m in result["models"]:
        d = result["results"][m]["dims"][dim]["details"]
        if dim == "adversarial":
            for name, a in d.get("attacks", {}).items():
                if "skipped" in a:
                    notes.append(f"{m}: attack '{name}' skipped — {a['skipped']}")
        if dim == "safety" and m == result["models"][0]:
            notes.append(
                f"sources: {d.get('sources')}; judge: {d.get('judge')}; toxicity scorer: {d.get('toxicity_scorer')}"
            )
        if dim == "hallucination" and m == result["models"][0]:
            notes.append(f"sources: {d.get('sources')}")
    return notes


def example_lines(result: Mapping[str, Any], dim: str) -> list[str]:
    """A few model outputs per dimension, so a reader can see what was scored."""
    out = []
    for m in result["models"]:
        d = result["results"][m]["dims"][dim]["details"]
        if dim == "safety":
            for ex in d.get("examples", {}).get("harmful", [])[:2]:
                out.append(f"{m} · harmful · {ex['verdict']}: {ex['prompt']!r} → {ex['response']!r}")
        elif dim == "adversarial":
            out += attack_lines(m, d.get("attacks", {}))
        elif dim == "hallucination":
            for name, examples in d.get("examples", {}).items():
                for ex in examples[:2]:
                    out.append(
                        f"{m} · {name}: {ex['question']!r} gold {ex['answers']} → {ex['prediction']!r}"
                    )
    return out


ATTACK_SAMPLES = 3
"""Successful attacks shown per model and attack (the JSON keeps up to 5)."""


def _margin(value: Any) -> str:
    return "?" if value is None else f"{value:+.2f}"


def attack_lines(model: str, attacks: Mapping[str, Any], n: int = ATTACK_SAMPLES) -> list[str]:
    """Successful attacks as audit lines: original → perturbed, the edits, prediction before → after, and
    the gold choice's log-likelihood margin over the best other choice before → after."""
    out = []
    for name, a in attacks.items():
        if a.get("skipped"):
            continue
        shown = a.get("examples", [])[:n]
        if not shown:
            out.append(f"{model} · {name}: no successful attack on {a.get('n', '?')} items")
        for ex in shown:
            before = ex.get("before") or ex.get("clean_label")
            after = ex.get("after") or ex.get("adv_label")
            out.append(
                f"{model} · {name}: {ex['original']!r} → {ex['perturbed']!r} (edits: "
                f"{'; '.join(ex.get('edits', [])) or '–'}); prediction {before!r} → {after!r} (gold "
                f"{ex.get('gold')!r}, margin {_margin(ex.get('clean_margin'))} → {_margin(ex.get('adv_margin'))})"
            )
    return out
