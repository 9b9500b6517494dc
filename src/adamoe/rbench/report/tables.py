"""The report's tables and lists, built from the suite's result dict (models side by side)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adamoe.rbench.dimensions.base import metric_direction
from adamoe.rbench.report.values import DASH, delta, num, pct

__all__ = [
    "ROUTING_HEADERS",
    "example_lines",
    "headline_table",
    "note_lines",
    "ood_table",
    "routing_rows",
    "safety_category_table",
]


def headline_table(result: Mapping[str, Any], dim: str) -> tuple[list[str], list[list[str]]]:
    """Rows = metrics of `dim`, columns = models (percent)."""
    models = result["models"]
    names: list[str] = []
    for m in models:
        for k in result["results"][m]["dims"][dim]["metrics"]:
            if k not in names:
                names.append(k)
    rows = []
    for k in names:
        rows.append(
            [k, metric_direction(k)]
            + [pct(result["results"][m]["dims"][dim]["metrics"].get(k)) for m in models]
        )
    return ["metric (%)", "better", *models], rows


def routing_rows(result: Mapping[str, Any], dim: str) -> list[list[str]]:
    """(model, stage, tokens, load, Δload, entropy, Δentropy, JS mean, JS max) rows; dense models get dashes."""
    rows = []
    for m in result["models"]:
        routing = result["results"][m]["dims"][dim].get("routing")
        if not routing:
            rows.append([m, DASH, DASH, DASH, DASH, DASH, DASH, DASH, DASH])
            continue
        clean = routing.get("clean")
        for stage, s in routing["stages"].items():
            sh = routing["shift"].get(stage)
            label = f"{stage} (ref)" if stage == clean else stage
            rows.append(
                [
                    m,
                    label,
                    str(int(s.get("tokens", 0))),
                    num(s["load"]),
                    delta(sh["delta_load"]) if sh else DASH,
                    num(s["entropy"]),
                    delta(sh["delta_entropy"]) if sh else DASH,
                    num(sh["js_mean"], ".2e") if sh else DASH,
                    num(sh["js_max"], ".2e") if sh else DASH,
                ]
            )
    return rows


ROUTING_HEADERS = [
    "model",
    "stage",
    "tokens",
    "load",
    "Δload vs ref",
    "router entropy",
    "Δentropy",
    "JS mean (bits)",
    "JS max (bits)",
]


def ood_table(result: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Rows = ID set and each shifted set (kind, accuracy and gap per model)."""
    models = result["models"]
    names: list[str] = []
    for m in models:
        for k in result["results"][m]["dims"]["ood"]["details"]["shifts"]:
            if k not in names:
                names.append(k)
    rows = [
        [
            "id",
            "in-distribution",
            *[pct(result["results"][m]["dims"]["ood"]["metrics"]["id_acc"]) for m in models],
        ]
    ]
    for k in names:
        cells = []
        for m in models:
            s = result["results"][m]["dims"]["ood"]["details"]["shifts"].get(k)
            cells.append(f"{pct(s['acc'])} (gap {pct(s['gap'])})" if s else DASH)
        kind = next(
            (
                result["results"][m]["dims"]["ood"]["details"]["shifts"][k]["kind"]
                for m in models
                if k in result["results"][m]["dims"]["ood"]["details"]["shifts"]
            ),
            "",
        )
        rows.append([k, kind, *cells])
    return ["set", "shift", *[f"{m} acc % (gap)" for m in models]], rows


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
                out.append(f"{m} · harmful · refused={ex['refused']}: {ex['prompt']!r} → {ex['response']!r}")
        elif dim == "adversarial":
            for name, a in d.get("attacks", {}).items():
                for ex in a.get("examples", [])[:1]:
                    out.append(f"{m} · {name}: {ex['original']!r} → {ex['perturbed']!r}")
        elif dim == "hallucination":
            for ex in d.get("examples", [])[:2]:
                out.append(f"{m}: {ex['question']!r} gold {ex['answers']} → {ex['prediction']!r}")
    return out
