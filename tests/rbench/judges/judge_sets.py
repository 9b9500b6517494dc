"""The labelled refusal sets and per-class precision / recall / F1 of any refusal judge, with intervals.

Test material, not part of a run: the suite never reads these sets (it judges model outputs); the
tests hold every judge to a floor on them and docs/judges.md prints their tables from here.
The sets stay package data of `adamoe.rbench.judges` (`data/`), beside the judges they measure.

`data/refusal_3way.jsonl` (written for this project by the author of `ThreeWayRefusalJudge`, before its
rules; not copied from anywhere): one JSON object a line — `id`, `category`, `label` ("refusal",
"compliance" or "degenerate"), `prompt`, `text`. 68 refusals (hard, unusual phrasing without "sorry",
partial — declines the core ask and offers only safe adjacent help —, soft, truncated, over-refusals of
benign look-alikes), 66 compliances (plain, with warnings or "this is illegal", refusal-like openings
such as "No problem!" or "I won't lie", partial compliance that still gives the method), 32 degenerate
outputs (repetition loops, gibberish, empty, off-topic text and template leaks).

Split (`split_of`): within each category, rows sorted by sha256 of the text; even ranks are `dev` (read
while writing the rules), odd ranks `test` (scored once, at the end). Because the same person wrote the
set and the judge, it is not the "outside" set the bench asks for; it measures the listed failure modes.

Scoring (`score_classes`): labels come from `verdicts`, so a two-way judge says "refusal" or
"compliance", and "degenerate" only for broken text; a judge with `classify` gives all three. Per class:
precision with its Wilson interval (n = items predicted in the class), recall with its Wilson interval
(n = items of the class), and F1 with a percentile bootstrap interval over items (F1 is not a proportion,
so Wilson does not apply).

The dev set `tests/rbench/judges/data/judge_dev_set.jsonl` (`load_dev`; 112 items, 38 refused / 40
complied / 34 degenerate, written by the author of the issue-18 redesign before tuning, in the first
outside set's error categories but none of its items) is what the redesigned cues and thresholds were
tuned on: its scores are dev scores, not an estimate.

The older two-way set `data/refusal_labelled.jsonl` (`load_labelled`; same fields, labels "refusal" or
"compliance", written by another author in the style of small chat models; off-topic answers labelled
"not refused") was written for the former structured judge and is kept as a second floor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from adamoe.eval.significance import Estimate, bootstrap_ci, proportion_ci
from adamoe.rbench.judges.base import RefusalJudge
from adamoe.rbench.judges.threeway import VERDICTS, Verdict, verdicts

__all__ = [
    "CLASSES",
    "ClassScores",
    "LabelledCase",
    "compare_judges",
    "format_table",
    "load_dev",
    "load_labelled",
    "load_three_way",
    "score_classes",
    "split_of",
    "verdict_rates",
]

CLASSES = ("refusal", "compliance", "degenerate")
SET_FILE = "refusal_3way.jsonl"


@dataclass(frozen=True, kw_only=True)
class LabelledCase:
    """One labelled (prompt, response) of a refusal set."""

    id: str
    category: str
    label: str
    prompt: str
    text: str


def split_of(rows: Sequence[LabelledCase]) -> dict[str, str]:
    """id -> 'dev' or 'test': per category, sha256(text) order, even ranks dev, odd ranks test."""
    out: dict[str, str] = {}
    for cat in sorted({r.category for r in rows}):
        ranked = sorted((r for r in rows if r.category == cat), key=lambda r: _digest(r.text))
        out.update({r.id: ("dev" if k % 2 == 0 else "test") for k, r in enumerate(ranked)})
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_cases(file: str, labels: Sequence[str]) -> list[LabelledCase]:
    """Every row of a labelled JSONL set of the package (blank lines skipped, labels checked)."""
    raw = (resources.files("adamoe.rbench.judges") / "data" / file).read_text("utf-8")
    rows = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        d: dict[str, Any] = json.loads(line)
        if d.get("label") not in labels:
            raise ValueError(f"{file} line {n}: label must be one of {tuple(labels)}, got {d.get('label')!r}")
        rows.append(LabelledCase(**{k: str(d[k]) for k in ("id", "category", "label", "prompt", "text")}))
    return rows


def _check_split(split: str, allowed: tuple[str, ...]) -> None:
    if split not in allowed:
        raise ValueError(f"split: expected one of {allowed}, got {split!r}")


def load_three_way(split: str = "all") -> list[LabelledCase]:
    """The three-way set, or its 'dev' / 'test' part (file order kept)."""
    _check_split(split, ("all", "dev", "test"))
    rows = _read_cases(SET_FILE, CLASSES)
    if split == "all":
        return rows
    parts = split_of(rows)
    return [r for r in rows if parts[r.id] == split]


def load_labelled() -> list[LabelledCase]:
    """The older two-way set (refusal / compliance)."""
    return _read_cases("refusal_labelled.jsonl", CLASSES[:2])


DEV_SET = Path(__file__).resolve().parent / "data" / "judge_dev_set.jsonl"
_DEV_LABELS = {"refused": "refusal", "complied": "compliance", "degenerate": "degenerate"}


def load_dev(path: Path = DEV_SET) -> list[LabelledCase]:
    """The dev set the three-way judge's cues and thresholds were tuned on (written before tuning;
    fields `id`, `category`, `prompt`, `response`, `label` in the outside sets' vocabulary "refused" /
    "complied" / "degenerate", mapped here to the judge's)."""
    rows = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        d: dict[str, Any] = json.loads(line)
        if d.get("label") not in _DEV_LABELS:
            raise ValueError(
                f"{path.name} line {n}: label must be one of {tuple(_DEV_LABELS)}, got {d.get('label')!r}"
            )
        rows.append(
            LabelledCase(
                id=d["id"],
                category=d["category"],
                label=_DEV_LABELS[d["label"]],
                prompt=d["prompt"],
                text=d["response"],
            )
        )
    return rows


@dataclass(frozen=True, kw_only=True)
class ClassScores:
    """Precision, recall (Wilson intervals) and F1 (bootstrap interval) of one class, with the counts."""

    cls: str
    tp: int
    fp: int
    fn: int
    precision: Estimate | None
    recall: Estimate | None
    f1: Estimate

    def row(self, judge: str) -> str:
        """One markdown table row: judge | class | P [CI] (n) | R [CI] (n) | F1 [CI]."""
        cells = [_fmt(e) for e in (self.precision, self.recall)]
        f1 = f"{self.f1.value:.3f} [{self.f1.low:.3f}, {self.f1.high:.3f}]"
        return f"| {judge} | {self.cls} | {cells[0]} | {cells[1]} | {f1} |"


def _fmt(e: Estimate | None) -> str:
    if e is None:
        return "— (n=0)"
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}] (n={e.n})"


def _ratio_ci(hits: int, n: int) -> Estimate | None:
    return proportion_ci(hits, n) if n else None


def _f1_of_codes(codes: np.ndarray) -> float:
    """codes (n_seeds, n_items): 3 = true positive, 1 = false positive, 2 = false negative, 0 = other."""
    tp, fp, fn = ((codes == c).sum() for c in (3, 1, 2))
    denom = 2 * tp + fp + fn
    return float(2 * tp / denom) if denom else 0.0


def score_classes(
    gold: Sequence[str], pred: Sequence[str], *, classes: Sequence[str] = CLASSES, seed: int = 0
) -> dict[str, ClassScores]:
    """Per-class scores of predicted labels `pred` against `gold` (both one label per item)."""
    if len(gold) != len(pred) or not gold:
        raise ValueError(
            f"pred: expected {len(gold)} labels (one per gold label, at least one), got {len(pred)}"
        )
    out = {}
    for c in classes:
        codes = np.array([2 * (g == c) + (p == c) for g, p in zip(gold, pred)], dtype=np.float64)
        tp, fp, fn = (int((codes == k).sum()) for k in (3, 1, 2))
        f1 = bootstrap_ci(codes, rng=np.random.default_rng(seed), stat=_f1_of_codes)
        out[c] = ClassScores(
            cls=c,
            tp=tp,
            fp=fp,
            fn=fn,
            precision=_ratio_ci(tp, tp + fp),
            recall=_ratio_ci(tp, tp + fn),
            f1=f1,
        )
    return out


def compare_judges(
    judges: Mapping[str, RefusalJudge], rows: Sequence[LabelledCase]
) -> dict[str, dict[str, ClassScores]]:
    """judge name -> class -> scores on `rows` (binary judges: refusal vs not; see the module doc)."""
    gold = [r.label for r in rows]
    prompts, texts = [r.prompt for r in rows], [r.text for r in rows]
    return {
        name: score_classes(gold, [v.label for v in verdicts(j, prompts, texts)])
        for name, j in judges.items()
    }


def format_table(scores: Mapping[str, Mapping[str, ClassScores]], *, classes: Sequence[str] = CLASSES) -> str:
    """A markdown table of `compare_judges` output, one row per (judge, class)."""
    head = "| judge | class | precision [95% CI] (n) | recall [95% CI] (n) | F1 [95% CI] |\n|---|---|---|---|---|"
    rows = [s[c].row(name) for name, s in scores.items() for c in classes if c in s]
    return "\n".join([head, *rows])


def verdict_rates(found: Sequence[Verdict]) -> Mapping[str, float]:
    """Rates over all verdicts (refusal, compliance, degenerate: they sum to 1) and the refusal rate
    among usable (non-degenerate) answers: a naive recount of what the safety dimension reports per item."""
    n = len(found)
    if not n:
        raise ValueError("verdicts: expected at least one verdict to compute rates")
    counts = {c: sum(v.label == c for v in found) for c in VERDICTS}
    usable = n - counts["degenerate"]
    rates = {f"{c}_rate": counts[c] / n for c in VERDICTS}
    rates["refusal_rate_usable"] = counts["refusal"] / usable if usable else float("nan")
    return rates
