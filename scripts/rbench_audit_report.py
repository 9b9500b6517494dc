"""The two hand-audit documents of a finished run (`scripts/rbench_audit_lib.py`): Markdown to read, JSONL to fill.

Why two files each: the Markdown clips long texts so a table stays readable; the JSONL holds every full
text and its empty `audit` field, and is what the summary reads back, so a filled file is the audit's
record. Both are written atomically; the documents go through the project's renderer
(`adamoe.eval.report`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scripts.rbench_audit_lib import ADVERSARIAL_AUDIT, REFUSAL_AUDIT

from adamoe.eval.report import Heading, Paragraph, Table, to_markdown
from adamoe.rbench.dimensions.safety import clip
from adamoe.utils.io import atomic_write_text

__all__ = ["adversarial_markdown", "refusal_markdown", "write_audit"]

_HOW = (
    "How to fill: read each row and write one of {values} into the `audit` field of the same row (same "
    "{key}) in `{jsonl}`, which holds the full texts; `python scripts/rbench_audit.py --summarise <this "
    "folder>` reads that file (the empty column here is only for reading alongside)."
)


def _how(values: Sequence[str], key: str, jsonl: str) -> Paragraph:
    return Paragraph(_HOW.format(values=" / ".join(f"`{v}`" for v in values), key=key, jsonl=jsonl))


def _count_table(counts: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Table:
    """model × set: n, refusals listed, n × reported rate (equal: checked), degenerate; then totals."""
    rows, total = [], {"n": 0, "refusal": 0, "degenerate": 0}
    for model, sets in counts.items():
        for set_name, c in sets.items():
            rows.append([model, set_name, c["n"], c["refusal"], f"{c['n'] * c['rate']:g}", c["degenerate"]])
            total = {k: total[k] + c[k] for k in total}
    rows.append(["total", "", total["n"], total["refusal"], "", total["degenerate"]])
    headers = ("model", "set", "n", "refusals listed", "n × reported rate", "degenerate listed")
    return Table.plain(headers, rows)


def _refusal_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    cells = [
        [
            k + 1,
            r["model"],
            r["set"],
            r["id"],
            clip(r["prompt"], 160),
            clip(r["response"], 400) or "(empty)",
            r["reason"],
            "",
        ]
        for k, r in enumerate(rows)
    ]
    return Table.plain(("#", "model", "set", "id", "prompt", "response", "judge reason", "audit"), cells)


def refusal_markdown(
    rows: Sequence[Mapping[str, Any]], counts: Mapping[str, Mapping[str, Mapping[str, Any]]], *, run: str
) -> str:
    """Counts per model and set, then every judge-refused answer, then every degenerate one."""
    refused = [r for r in rows if r["verdict"] == "refusal"]
    degenerate = [r for r in rows if r["verdict"] == "degenerate"]
    blocks = [
        Heading(f"Refusal audit of {run}", 1),
        Paragraph(
            "Every answer the safety dimension counted as a refusal (three-way judge verdict `refusal`), for "
            "every model and prompt set (harmful: `refusal_rate`; benign look-alikes: `over_refusal_rate`), "
            "and in its own section every answer judged degenerate (left out of refusal). The judge's reason "
            "is from re-running the run's judge on the cached answer; each label was checked to equal the "
            "one the run counted."
        ),
        _how(REFUSAL_AUDIT, "model, set and id", "refusals.jsonl"),
        Heading("Counts", 2),
        _count_table(counts),
        Heading(f"Refusals ({len(refused)})", 2),
        _refusal_table(refused),
        Heading(f"Degenerate, excluded from refusal ({len(degenerate)})", 2),
        _refusal_table(degenerate),
    ]
    return to_markdown(blocks)


def _set_table(summary: Mapping[str, Mapping[str, Any]]) -> Table:
    rows = []
    for name, s in summary.items():
        per_task = ", ".join(f"{t} {n}" for t, n in s["by_task"].items()) or "–"
        asr = s["asr"].fmt() if s["asr"] is not None else f"– (skipped: {s['skipped']})"
        rows.append([name, s["size"], per_task, asr])
    return Table.plain(
        ("attack", "frozen items", "per task", "surrogate attack success % [95% Wilson CI]"), rows
    )


def _sample_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    cells = [
        [
            k + 1, r["attack"], r["task"], r["id"], r["gold"], clip(r["context"], 240),
            f"{r['original']} → {r['perturbed']}", "; ".join(r["edits"]),
            f"{r['before']} → {r['after']}", "yes" if r["success"] else "no", "",
        ]
        for k, r in enumerate(rows)
    ]  # fmt: skip
    headers = (
        "#", "attack", "task", "id", "gold", "context (not edited)", "original → perturbed", "edits",
        "surrogate before → after", "flipped surrogate", "audit",
    )  # fmt: skip
    return Table.plain(headers, cells)


def adversarial_markdown(
    sample: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Mapping[str, Any]],
    *,
    run: str,
    pool: int,
    seed: int,
) -> str:
    """The frozen sets' sizes and surrogate success rates, the sampling rule, then the sampled items."""
    blocks = [
        Heading(f"Adversarial audit of {run}", 1),
        Paragraph(
            "The fixed adversarial sets were built once on the surrogate and every model was scored on them; "
            "only edits that flipped the surrogate were kept. Attack success = frozen items among the "
            "clean-correct items the surrogate was attacked on."
        ),
        _set_table(summary),
        Paragraph(
            f"Sample: {len(sample)} of the {pool} frozen items of all attacks pooled, drawn uniformly without "
            f"replacement by numpy's generator `adamoe.eval.estimates.stream({seed}, 'audit', 'adversarial')` "
            "(its own stream: no other draw of the run moves it), listed in file order."
        ),
        _how(ADVERSARIAL_AUDIT, "attack and id", "adversarial.jsonl"),
        _sample_table(sample),
    ]
    return to_markdown(blocks)


def write_audit(out: str | Path, name: str, rows: Sequence[Mapping[str, Any]], markdown: str) -> list[Path]:
    """`<out>/<name>.jsonl` (one row a line, full texts) and `<out>/<name>.md`, each written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return [atomic_write_text(out / f"{name}.jsonl", lines), atomic_write_text(out / f"{name}.md", markdown)]
