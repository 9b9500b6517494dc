"""The report's detail tables and lists: routing per stage (drift vs a matched reference), notes on
sources and skipped attacks, and a few model outputs per dimension."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adamoe.eval.report import Column, Table

__all__ = ["ROUTING_COLUMNS", "attack_lines", "example_lines", "note_lines", "routing_table"]

ROUTING_COLUMNS = (
    *(Column(key=k, label=k) for k in ("model", "stage", "vs")),
    Column(key="tokens", label="tokens", digits=0),
    Column(key="load", label="load", digits=3),
    Column(key="delta_load", label="Δload vs ref", digits=3),
    Column(key="entropy", label="router entropy", digits=3),
    Column(key="delta_entropy", label="Δentropy", digits=3),
    Column(key="js_mean", label="JS mean (bits)"),
    Column(key="js_max", label="JS max (bits)"),
    Column(key="p_holm", label="p (Holm)", digits=3),
    Column(key="drift", label="drift"),
)


def _sci(v: Any) -> str | None:
    return None if v is None else f"{v:.2e}"


def routing_table(result: Mapping[str, Any], dim: str) -> Table:
    """Per model and stage: reference, tokens, load, Δload, entropy, Δentropy, JS mean / max, p Holm and
    the verdict, "within noise" when the permutation test of the stage against its matched reference is
    not significant after Holm (`adamoe.eval.routing_drift`); dense models get dashes."""
    rows: list[dict[str, Any]] = []
    for m in result["models"]:
        routing = result["results"][m]["dims"][dim].get("routing")
        refs = set((routing or {}).get("references", ()))
        rows += [{"model": m}] if not routing else []
        for stage, s in (routing or {}).get("stages", {}).items():
            sh = routing["shift"].get(stage) or {}
            within = sh.get("within_noise")
            rows.append(
                {
                    **{k: s.get(k) for k in ("tokens", "load", "entropy")},
                    **{k: sh.get(k) for k in ("delta_load", "delta_entropy", "p_holm")},
                    "model": m,
                    "stage": f"{stage} (ref)" if stage in refs else stage,
                    "vs": sh.get("reference"),
                    "js_mean": _sci(sh.get("js_mean")),
                    "js_max": _sci(sh.get("js_max")),
                    "drift": None if within is None else ("within noise" if within else "above noise"),
                }
            )
    caption = (
        "drift vs each stage's matched reference (vs); p = permutation test of the JS between the two item "
        "sets, Holm-adjusted within the dimension; 'within noise' = p >= 0.05"
    )
    return Table(columns=ROUTING_COLUMNS, rows=tuple(rows), caption=caption)


def note_lines(result: Mapping[str, Any], dim: str) -> list[str]:
    """Per-dimension notes: skipped attacks; safety's data sources and judges."""
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
