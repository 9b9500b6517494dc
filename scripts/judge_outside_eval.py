"""Score the default refusal judge once on the frozen outside-written set (issue 18).

Why: the judge's own sets were written by its author, so they measure the failure modes the author
thought of. Each outside set was written by someone else, blind to the judge, and frozen (sha256 in
FROZEN) before it was scored. The first (outside_refusal_set.jsonl, commit 7793568e) was scored once on
the earlier judge; the judge was then redesigned after its errors were read, so it is spent. The second
(outside_refusal_set_2.jsonl, commit bbddf0a, written during the redesign by someone who saw neither the
judge nor the first set) is the clean estimate of the redesigned judge, scored once. Prints the 3x3 confusion matrix (rows gold,
columns predicted), per-class precision and recall with Wilson 95% intervals and their n, and the same
for the binary view (refused vs not refused, the view the safety dimension's refusal rate takes).

    python scripts/judge_outside_eval.py --set tests/rbench/judges/data/outside_refusal_set_2.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.metrics import confusion_matrix

from adamoe.eval.significance import Estimate, proportion_ci
from adamoe.rbench.judges import make_judge, verdicts

DATA = Path(__file__).resolve().parents[1] / "tests/rbench/judges/data"
FROZEN = {
    "outside_refusal_set.jsonl": "86f934989a0222ea9574354411d180a79fd0155759edc3aca9caf8eeb5b9df39",
    "outside_refusal_set_2.jsonl": "2daeaed734ee3c54a6ebf09a230ba0804cac9f377963d1d91f80e1a33a5c7633",
}
SET_PATH = DATA / "outside_refusal_set_2.jsonl"
CLASSES = ("refused", "complied", "degenerate")
BINARY = ("refused", "not refused")
JUDGE_TO_SET = {"refusal": "refused", "compliance": "complied", "degenerate": "degenerate"}


def load_set(path: Path, *, sha256: str | None = None) -> list[dict[str, str]]:
    """The frozen rows; fails if the file is not the recorded version (it must not change silently).
    ``sha256`` defaults to the recorded hash of the file's name in :data:`FROZEN`."""
    sha256 = sha256 or FROZEN.get(path.name)
    if sha256 is None:
        raise SystemExit(f"{path}: not a frozen set; expected one of {sorted(FROZEN)} (--set <path>)")
    data = path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise SystemExit(
            f"{path}: sha256 {found}, expected the frozen {sha256}; restore it with git checkout"
        )
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    bad = [r.get("id") for r in rows if r.get("label") not in CLASSES]
    if bad:
        raise SystemExit(f"{path}: label of {bad[:3]} not in {CLASSES}")
    return rows


def confusion_scores(gold: Sequence[str], pred: Sequence[str], classes: Sequence[str]) -> dict[str, Any]:
    """Confusion matrix (rows gold, columns predicted, in `classes` order) and, per class, precision
    (n = items predicted in it) and recall (n = items of it) as Wilson 95% `Estimate`s (None at n = 0)."""
    if len(gold) != len(pred) or not gold:
        raise ValueError(
            f"pred: expected {len(gold)} labels (one per gold label, at least one), got {len(pred)}"
        )
    matrix = confusion_matrix(list(gold), list(pred), labels=list(classes))

    def ci(hits: int, n: int) -> Estimate | None:
        return proportion_ci(hits, n) if n else None

    per_class = {
        c: {
            "precision": ci(int(matrix[k, k]), int(matrix[:, k].sum())),
            "recall": ci(int(matrix[k, k]), int(matrix[k, :].sum())),
        }
        for k, c in enumerate(classes)
    }
    return {"classes": tuple(classes), "matrix": matrix.tolist(), "per_class": per_class}


def binary(labels: Sequence[str]) -> list[str]:
    """refused vs not refused (complied and degenerate both count as not refused)."""
    return [lab if lab == "refused" else "not refused" for lab in labels]


def _cell(e: Estimate | None) -> str:
    return "— (n=0)" if e is None else f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}] (n={e.n})"


def format_scores(title: str, scores: dict[str, Any]) -> str:
    """Markdown: the confusion matrix, then one precision/recall row per class."""
    classes = scores["classes"]
    lines = [f"### {title}", "", "| gold \\ predicted | " + " | ".join(classes) + " |"]
    lines.append("|---" * (len(classes) + 1) + "|")
    lines += [
        f"| {c} | " + " | ".join(str(v) for v in row) + " |" for c, row in zip(classes, scores["matrix"])
    ]
    lines += ["", "| class | precision [95% CI] (n) | recall [95% CI] (n) |", "|---|---|---|"]
    lines += [
        f"| {c} | {_cell(s['precision'])} | {_cell(s['recall'])} |" for c, s in scores["per_class"].items()
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=SET_PATH, help="the frozen outside set (JSONL)")
    args = parser.parse_args(argv)
    rows = load_set(args.set)
    judge = make_judge("three-way")  # the safety dimension's default judge spec
    found = verdicts(judge, [r["prompt"] for r in rows], [r["response"] for r in rows])
    gold, pred = [r["label"] for r in rows], [JUDGE_TO_SET[v.label] for v in found]
    print(f"judge: {getattr(judge, 'name', type(judge).__name__)}; set: {args.set.name} (n={len(rows)})\n")
    print(format_scores("three-way", confusion_scores(gold, pred, CLASSES)) + "\n")
    print(
        format_scores("binary: refused vs not", confusion_scores(binary(gold), binary(pred), BINARY)) + "\n"
    )
    print("errors (id | gold -> predicted | reason | response):")
    for r, p, v in zip(rows, pred, found):
        if p != r["label"]:
            print(f"  {r['id']} | {r['label']} -> {p} | {v.reason} | {r['response'][:90]!r}")


if __name__ == "__main__":
    main()
