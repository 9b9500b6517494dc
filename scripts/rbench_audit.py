"""The two hand audits of issue 18 from a finished `adamoe rbench` run folder, and their summary.

Writes `refusals.md` / `.jsonl` (every answer the safety dimension counted as a refusal, and the
degenerate ones, each with an empty `audit` field; totals checked against the reported rates) and
`adversarial.md` / `.jsonl` (a seeded sample of the frozen adversarial sets, with the sets' sizes and
the surrogate's attack success rate). After a person filled the `audit` fields, `--summarise` prints
the judge's refusal precision and the share of label-preserving, fluent edits with Wilson 95%
intervals. Where the run keeps what is audited: `scripts/rbench_audit_lib.py`.

    python scripts/rbench_audit.py --run-dir /work/runs/rbench-offline --out docs/figures/rbench/audit
    python scripts/rbench_audit.py --summarise docs/figures/rbench/audit
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adamoe.eval.significance import Estimate

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `python scripts/rbench_audit.py` puts scripts/, not the repo, on the path
    sys.path.insert(0, _ROOT)

import scripts.rbench_audit_lib as audit  # noqa: E402
from scripts.rbench_audit_report import adversarial_markdown, refusal_markdown, write_audit  # noqa: E402


def _fmt(est: Estimate | None) -> str:
    return est.fmt() if est is not None else "– (nothing audited)"


def build(run_dir: Path, out: Path, *, sample: int, seed: int) -> dict[str, Any]:
    """Both audit files of a run; returns the counts and the adversarial summary it printed."""
    run = audit.open_run(run_dir)
    rows, counts = audit.refusal_rows(run)
    write_audit(out, "refusals", rows, refusal_markdown(rows, counts, run=str(run_dir)))
    sets = audit.frozen_sets(run)
    summary = audit.surrogate_summary(sets)
    pool = audit.adversarial_rows(run, sets)
    picked = audit.draw(pool, sample, seed=seed) if pool else []
    md = adversarial_markdown(picked, summary, run=str(run_dir), pool=len(pool), seed=seed)
    write_audit(out, "adversarial", picked, md)
    for model, sets_ in counts.items():
        for set_name, c in sets_.items():
            print(f"{model} {set_name}: {c['refusal']} refusals, {c['degenerate']} degenerate of n={c['n']}")
    for name, s in summary.items():
        print(f"frozen {name}: {s['size']} items {s['by_task']}; surrogate attack success {_fmt(s['asr'])}")
    print(f"{len(rows)} refusal rows, {len(picked)} of {len(pool)} adversarial items written to {out}")
    return {"counts": counts, "summary": summary}


def summarise(folder: Path) -> dict[str, Any]:
    """Print the agreement the filled `audit` fields show (values in %, Wilson 95% intervals)."""
    refusals = audit.refusal_precision(audit.read_jsonl(folder / "refusals.jsonl"))
    print("judge refusals the audit confirms (precision, % [95% Wilson CI]):")
    for model, est in refusals["by_model"].items():
        print(f"  {model}: {_fmt(est)}")
    print(f"  overall: {_fmt(refusals['overall'])}")
    print(f"judge-degenerate answers the audit confirms: {_fmt(refusals['degenerate'])}")
    print(f"refusals.jsonl rows not audited yet: {refusals['unaudited']}")
    adversarial = audit.adversarial_share(audit.read_jsonl(folder / "adversarial.jsonl"))
    print(f"adversarial edits label-preserving & fluent: {_fmt(adversarial['overall'])}")
    for name, est in adversarial["by_attack"].items():
        print(f"  {name}: {_fmt(est)}")
    print(f"  audit values: {adversarial['counts']}; not audited yet: {adversarial['unaudited']}")
    return {"refusals": refusals, "adversarial": adversarial}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--run-dir", type=Path, help="a finished rbench run folder (holds metrics.json)")
    mode.add_argument("--summarise", type=Path, metavar="DIR", help="a folder of filled audit files")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/rbench/audit"))
    parser.add_argument("--adversarial-sample", type=int, default=50, help="frozen items to sample")
    parser.add_argument("--seed", type=int, default=0, help="seed of the adversarial sample's own stream")
    args = parser.parse_args(argv)
    try:
        if args.summarise is not None:
            summarise(args.summarise)
        else:
            build(args.run_dir, args.out, sample=args.adversarial_sample, seed=args.seed)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"rbench_audit: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
