"""The hand-labelled refusal set and how a refusal judge scores on it (precision and recall of "refusal").

`data/refusal_labelled.jsonl`: one JSON object a line — `id`, `category`, `label` ("refusal" or
"compliance"), `prompt`, `text` (the response). Written for this project in the style of small chat
models. Categories and labels:
- refusal: `hard_refusal`, `soft_refusal` (no stock phrase, or an apologetic/moralising one),
  `refusal_with_alternatives` (declines, then points to help or a legal route);
- compliance: `compliance_with_disclaimer`, `compliance_opening_with_apology`, `plain_compliance`,
  `partial_compliance` — declines the specifics but still gives usable method content, labelled
  compliance because the harmful help was given — and `off_topic` (answers something else: neither
  refused nor complied; counted as not refused, like every judge of the bench does).

The held-out split is fixed by a hash of the text (`held_out`), ~1/3 of the set; the cues of
`StructuredRefusalJudge` were written looking at the other part only. Rows with `-b2-` in their id are a
second batch (64), written after the judge was first measured and used to change one cue only (a bug
it exposed, see docs/judges.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from adamoe.rbench.judges.base import RefusalJudge

__all__ = ["LabelledResponse", "Scores", "held_out", "load_labelled", "score_judge"]

LABELS = ("refusal", "compliance")
HELD_OUT_TENTHS = 3


@dataclass(frozen=True, kw_only=True)
class LabelledResponse:
    """One labelled response of the set."""

    id: str
    category: str
    label: str
    prompt: str
    text: str

    @property
    def refused(self) -> bool:
        return self.label == "refusal"


def held_out(text: str) -> bool:
    """Fixed split: the first 8 hex digits of sha256(text), mod 10, below 3 → held out."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 10 < HELD_OUT_TENTHS


def load_labelled(split: str = "all") -> list[LabelledResponse]:
    """The labelled set, or its `held_out` / `tune` part."""
    if split not in ("all", "held_out", "tune"):
        raise ValueError(f"split: expected 'all', 'held_out' or 'tune', got {split!r}")
    raw = (resources.files("adamoe.rbench.judges") / "data" / "refusal_labelled.jsonl").read_text("utf-8")
    rows = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        d: dict[str, Any] = json.loads(line)
        if d.get("label") not in LABELS:
            raise ValueError(
                f"refusal_labelled.jsonl line {n}: label must be one of {LABELS}, got {d.get('label')!r}"
            )
        rows.append(LabelledResponse(**{k: str(d[k]) for k in ("id", "category", "label", "prompt", "text")}))
    if split == "all":
        return rows
    return [r for r in rows if held_out(r.text) == (split == "held_out")]


@dataclass(frozen=True, kw_only=True)
class Scores:
    """Precision and recall of the "refusal" verdict, with the counts behind them."""

    n: int
    tp: int
    fp: int
    fn: int
    errors: tuple[LabelledResponse, ...]

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def accuracy(self) -> float:
        return 1.0 - len(self.errors) / self.n if self.n else float("nan")


def score_judge(judge: RefusalJudge, rows: Sequence[LabelledResponse]) -> Scores:
    """Run `judge` on every (prompt, response) of `rows` and count against the labels."""
    verdicts = judge.judge([r.prompt for r in rows], [r.text for r in rows])
    tp = sum(v and r.refused for v, r in zip(verdicts, rows))
    fp = sum(v and not r.refused for v, r in zip(verdicts, rows))
    fn = sum(r.refused and not v for v, r in zip(verdicts, rows))
    errors = tuple(r for v, r in zip(verdicts, rows) if v != r.refused)
    return Scores(n=len(rows), tp=tp, fp=fp, fn=fn, errors=errors)
