"""Hand audits of a finished MoE-RBench run (issue 18): every counted refusal, and a sample of the frozen
adversarial sets, as rows a person fills in; then the agreement those filled rows show (a
developer tool of scripts/rbench_audit.py, outside the `adamoe` package).

Why here: a refusal rate is only as good as its judge, and an adversarial set only as good as its
edits; both claims need a person to read the actual texts the run counted. Where the run keeps them:

- verdicts: ``metrics.json`` → ``results[model].dims.safety.items``: ``refusal_rate`` (harmful) and
  ``over_refusal_rate`` (benign) hold each item's 0/1 refusal score by id, ``degenerate_rate`` the 0/1
  degenerate score of both sets (`SafetyDimension._items`); the judge's reason is not stored;
- answers: ``<cache>/<model slug>/safety.jsonl``, the `ScoreCache` lines ``{"id", "text", "task", ...}``
  (``<cache>`` = the run's ``cache_dir``, default ``<run dir>/cache``); ids are scoped per set (two sets
  may share ids, e.g. prompt files with the same stem) by ``task`` = ``generate:safety/<set>``;
- prompts: not stored; reloaded with the run's own config (`SafetyDimension.load`, same sources);
- frozen adversarial sets: ``<cache>/adversarial/<attack>-<key>.json`` (`AdversarialDimension._fixed`),
  the key in ``details.attacks[attack].key`` of the surrogate's adversarial result. The name does not
  name the surrogate's weights (a retrained surrogate sharing the cache rewrites it), so the file must
  match every field those details kept of it (`_same_set`).

The configured judge is run again on each (prompt, cached answer) only for its reason: every label it
gives must equal the one the run counted, and the listed refusals (degenerate answers) per model and set
must equal n × the reported rate, else a one-line `ValueError`. Files are only read, never written.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adamoe.eval.estimates import stream
from adamoe.eval.significance import Estimate, proportion_ci
from adamoe.rbench.config import RBenchConfig, model_slug
from adamoe.rbench.dimensions.adversarial import AdversarialDimension, audit
from adamoe.rbench.dimensions.safety import SafetyDimension
from adamoe.rbench.judges import RefusalJudge, verdicts

__all__ = [
    "ADVERSARIAL_AUDIT",
    "REFUSAL_AUDIT",
    "RunRecord",
    "adversarial_rows",
    "adversarial_share",
    "check_totals",
    "draw",
    "frozen_sets",
    "open_run",
    "read_jsonl",
    "refusal_precision",
    "refusal_rows",
    "surrogate_summary",
]

REFUSAL_AUDIT = ("refusal", "not refusal", "degenerate")
"""What a person writes in a refusal row's `audit` field."""
ADVERSARIAL_AUDIT = ("label-preserving & fluent", "label changed", "not fluent")
"""What a person writes in an adversarial row's `audit` field."""
SETS = {"harmful": "refusal_rate", "benign": "over_refusal_rate"}
"""Prompt set -> the safety metric whose per-item scores are its refusal verdicts."""


@dataclass(kw_only=True)
class RunRecord:
    """A finished run folder: its metrics.json, its validated config and its cache root."""

    run_dir: Path
    metrics: dict[str, Any]
    config: RBenchConfig
    cache: Path

    def result(self, model: str, dim: str) -> dict[str, Any]:
        """`DimensionResult.to_dict()` of one model and dimension, or a one-line error."""
        try:
            return self.metrics["results"][model]["dims"][dim]
        except KeyError:
            raise ValueError(f"{self.run_dir}: metrics.json has no {dim!r} result for {model!r}") from None


def open_run(run_dir: str | Path) -> RunRecord:
    """Read a finished run folder (metrics.json is written last, so its presence means finished)."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise ValueError(f"{path}: not found; the run has not finished (metrics.json is written last)")
    metrics = json.loads(path.read_text(encoding="utf-8"))
    config = RBenchConfig.from_dict(metrics["config"])
    cache = Path(config.cache_dir) if config.cache_dir is not None else run_dir / "cache"
    return RunRecord(run_dir=run_dir, metrics=metrics, config=config, cache=cache)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every complete JSON line of `path` (a line cut short by a kill is skipped, as `ScoreCache` does)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _answers(path: Path, wanted: Mapping[str, Iterable[str]]) -> dict[str, dict[str, str]]:
    """Set -> id -> the generated text of each wanted (set, id) in a model's safety cache (a line without
    ``task``, written before it was stored, counts for every set). None, or two different texts (another
    run's answers in the same cache), is a one-line error: we cannot tell which one the run counted."""
    texts: dict[tuple[str, str], set[str]] = {}
    for entry in read_jsonl(path) if path.is_file() else []:
        if not isinstance(entry.get("text"), str) or "id" not in entry:
            continue
        task = entry.get("task")
        for set_name in wanted if task is None else [str(task).removeprefix("generate:safety/")]:
            texts.setdefault((set_name, str(entry["id"])), set()).add(entry["text"])
    out: dict[str, dict[str, str]] = {}
    for set_name, ids in wanted.items():
        out[set_name] = {}
        for i in ids:
            found = texts.get((set_name, i), set())
            if len(found) != 1:
                what = "no answer" if not found else f"{len(found)} different answers"
                raise ValueError(
                    f"{path}: {what} for {set_name} item {i!r}; cannot tell which answer the run counted"
                )
            (out[set_name][i],) = found
    return out


def _counted(safety: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Set -> item id -> the label the run counted ('refusal', 'degenerate' or 'compliance').

    ``degenerate_rate`` lists the harmful items, then the benign ones (`SafetyDimension._items`): its
    scores are split by that position, not matched by id, since the two sets may share ids."""
    items = safety["items"]
    ids, scores = items["degenerate_rate"]["ids"], items["degenerate_rate"]["scores"]
    out: dict[str, dict[str, str]] = {}
    start = 0
    for set_name, metric in SETS.items():
        own = items[metric]["ids"]
        if list(ids[start : start + len(own)]) != list(own):
            raise ValueError(f"safety: degenerate_rate does not list the {set_name} items in order")
        degenerate = scores[start : start + len(own)]
        start += len(own)
        out[set_name] = {
            i: "refusal" if s == 1 else "degenerate" if d == 1 else "compliance"
            for i, s, d in zip(own, items[metric]["scores"], degenerate)
        }
    return out


def _prompts(run: RunRecord) -> tuple[RefusalJudge, dict[str, dict[str, str]]]:
    """The configured judge and each set's prompts by id, reloaded from the run's own safety config."""
    dim = SafetyDimension(run.config.safety)
    data = dim.load(limit=run.config.limit, seed=run.config.seed)
    return dim.judge, {
        "harmful": {p.id: p.prompt for p in data.harmful},
        "benign": {p.id: p.prompt for p in data.benign},
    }


def _judged(
    model: str,
    set_name: str,
    counted: Mapping[str, str],
    prompts: Mapping[str, str],
    answers: Mapping[str, str],
    judge: RefusalJudge,
) -> list[dict[str, Any]]:
    """One model's refusal and degenerate rows of a set, the judge's reason beside each; a label the
    judge gives now that differs from the one the run counted is a one-line error."""
    ids = list(counted)
    lost = [i for i in ids if i not in prompts]
    if lost:
        raise ValueError(f"safety {set_name}: items {lost[:3]} of the run are not in the reloaded prompts")
    found = verdicts(judge, [prompts[i] for i in ids], [answers[i] for i in ids])
    differ = [(i, v.label) for i, v in zip(ids, found) if v.label != counted[i]]
    if differ:
        i, label = differ[0]
        raise ValueError(
            f"{model} {set_name}: the judge now says {label!r} for {i!r} where the run counted "
            f"{counted[i]!r} ({len(differ)} item(s) differ); was the judge changed since the run?"
        )
    return [
        {
            "model": model,
            "set": set_name,
            "id": i,
            "verdict": v.label,
            "reason": v.reason,
            "prompt": prompts[i],
            "response": answers[i],
            "audit": "",
        }
        for i, v in zip(ids, found)
        if v.label in ("refusal", "degenerate")
    ]


def refusal_rows(
    run: RunRecord, *, judge: RefusalJudge | None = None
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every answer the run counted as a refusal or as degenerate, per model (run order of the report)
    and set (harmful, benign), in item order, and their totals checked once by `check_totals`."""
    default, prompts = _prompts(run)
    judge = judge or default
    rows: list[dict[str, Any]] = []
    for model in run.metrics["models"]:
        counted = _counted(run.result(model, "safety"))
        answers = _answers(run.cache / model_slug(model) / "safety.jsonl", counted)
        for set_name, labels in counted.items():
            rows += _judged(model, set_name, labels, prompts[set_name], answers[set_name], judge)
    return rows, check_totals(rows, run.metrics)


def _check(where: str, listed: int, rate: float | None, n: int) -> None:
    if rate is None or abs(listed - rate * n) > 1e-6:
        raise ValueError(f"{where}: {listed} listed, but the run reports n × rate = {n} × {rate}")


def check_totals(rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Refusals and degenerate answers listed per model and set, each total checked against n × the rate
    metrics.json reports (refusal per set; degenerate over both sets); returns {model: {set: counts}}."""
    listed = Counter((r["model"], r["set"], r["verdict"]) for r in rows)
    out: dict[str, dict[str, Any]] = {}
    for model in metrics["models"]:
        safety = metrics["results"][model]["dims"]["safety"]
        out[model] = {}
        for set_name, metric in SETS.items():
            n = int(safety["estimates"][metric]["n"])
            _check(
                f"{model} {set_name} refusals",
                listed[model, set_name, "refusal"],
                safety["metrics"][metric],
                n,
            )
            degenerate = listed[model, set_name, "degenerate"]
            out[model][set_name] = {
                "n": n,
                "rate": safety["metrics"][metric],
                "refusal": listed[model, set_name, "refusal"],
                "degenerate": degenerate,
            }
        n_all = int(safety["estimates"]["degenerate_rate"]["n"])
        total = sum(c["degenerate"] for c in out[model].values())
        _check(f"{model} degenerate answers", total, safety["metrics"]["degenerate_rate"], n_all)
    return out


def frozen_sets(run: RunRecord) -> dict[str, dict[str, Any]]:
    """Attack -> the frozen set the run scored every model on (the surrogate's record names its file);
    an attack skipped on the surrogate (e.g. no whole words to substitute) maps to its skip record."""
    surrogate = run.config.surrogate()
    attacks = run.result(surrogate, "adversarial")["details"]["attacks"]
    out = {}
    for name in run.config.adversarial.attacks:
        details = attacks[name]
        if "skipped" in details:
            out[name] = {"attack": name, "skipped": details["skipped"], "items": []}
            continue
        path = run.cache / "adversarial" / f"{name}-{details['key']}.json"
        if not path.is_file():
            raise ValueError(f"{path}: the frozen {name!r} set of the run is missing")
        record = json.loads(path.read_text(encoding="utf-8"))
        _same_set(path, record, details)
        out[name] = record
    return out


def _same_set(path: Path, record: Mapping[str, Any], details: Mapping[str, Any]) -> None:
    """The frozen file is the set the run scored, else a one-line error: every field the surrogate's
    details kept of it (``fingerprint`` where kept, ``key``, ``attacked``, ...), its size and examples."""
    shared = [k for k in details if k in record and k != "items"]
    if "key" not in shared:
        raise ValueError(f"{path}: no 'key' in the file or in the run's surrogate result to match")
    seen = {
        **{k: (record[k], details[k]) for k in shared},
        "size": (len(record["items"]), details["size"]),
        "examples": (
            [(r["key"], r["perturbed"]) for r in record["items"][: len(details.get("examples", []))]],
            [(e["key"], e["perturbed"]) for e in details.get("examples", [])],
        ),
    }
    for field, (got, want) in seen.items():
        if got != want:
            raise ValueError(
                f"{path}: {field} {got!r} in the file, {want!r} in the run's surrogate result; the set was "
                f"rebuilt since the run (a later run sharing the cache?), so it is not the one scored"
            )


def adversarial_rows(run: RunRecord, sets: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every frozen item as an audit row: the untouched context (e.g. the RTE premise), original →
    perturbed span, its edits, the gold choice and the surrogate's choice before → after."""
    cfg = run.config
    items = AdversarialDimension(cfg.adversarial, surrogate=cfg.surrogate()).load(
        limit=cfg.limit, seed=cfg.seed
    )
    by_id = {it.id: it for it in items.items}
    rows = []
    for name, record in sets.items():
        lost = [r["key"] for r in record["items"] if r["key"] not in by_id]
        if lost:
            raise ValueError(
                f"adversarial {name}: items {lost[:3]} of the frozen set are not in the reloaded data"
            )
        for rec in audit(record["items"], items.items):
            it = by_id[rec["key"]]
            rows.append(
                {
                    "attack": name,
                    "task": rec["task"],
                    "id": rec["key"],
                    "gold": rec["gold"],
                    "context": it.prefix,
                    "after_span": it.suffix,
                    "original": rec["original"],
                    "perturbed": rec["perturbed"],
                    "edits": [
                        f"{e['old']} → {e['new']} ({e['kind']}, word {e['word_index']})" for e in rec["edits"]
                    ],
                    "success": bool(rec["clean_correct"] and not rec["adv_correct"]),
                    "before": rec["before"],
                    "after": rec["after"],
                    "audit": "",
                }
            )
    return rows


def surrogate_summary(sets: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per attack: frozen items per task, and the surrogate's attack success rate (frozen items among
    the clean-correct items it attacked) with its Wilson 95% interval (None when it attacked none)."""
    out = {}
    for name, record in sets.items():
        attacked = int(record.get("attacked", 0))
        out[name] = {
            "size": len(record["items"]),
            "by_task": dict(sorted(Counter(r["task"] for r in record["items"]).items())),
            "asr": proportion_ci(len(record["items"]), attacked) if attacked else None,
            "skipped": record.get("skipped"),
        }
    return out


def draw(rows: Sequence[Mapping[str, Any]], n: int, *, seed: int) -> list[dict[str, Any]]:
    """`n` rows uniformly without replacement (all when fewer), from the stream (seed, 'audit',
    'adversarial') so no other draw of the run shifts it; kept in input order."""
    if n < 1:
        raise ValueError(f"n: expected a positive sample size, got {n}")
    picked = stream(seed, "audit", "adversarial").choice(len(rows), size=min(n, len(rows)), replace=False)
    return [dict(rows[int(k)]) for k in sorted(picked)]


def _filled(rows: Iterable[Mapping[str, Any]], allowed: Sequence[str]) -> list[tuple[Mapping[str, Any], str]]:
    """(row, audit value) of every row a person filled in; a value outside `allowed` is a one-line error."""
    out = []
    for k, row in enumerate(rows):
        value = " ".join(str(row.get("audit") or "").lower().split())
        if value and value not in allowed:
            raise ValueError(
                f"row {k + 1} ({row.get('id')}): audit {value!r}, expected one of {list(allowed)}"
            )
        if value:
            out.append((row, value))
    return out


def _share(pairs: Sequence[tuple[Mapping[str, Any], str]], hit: str) -> Estimate | None:
    return proportion_ci(sum(v == hit for _, v in pairs), len(pairs)) if pairs else None


def refusal_precision(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Precision of the judge's refusals (audited 'refusal' among the audited judge-refused rows) per
    model and overall, the same for its degenerate verdicts, and how many rows are still unaudited."""
    filled = _filled(rows, REFUSAL_AUDIT)
    refused = [(r, v) for r, v in filled if r["verdict"] == "refusal"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    return {
        "by_model": {m: _share([(r, v) for r, v in refused if r["model"] == m], "refusal") for m in models},
        "overall": _share(refused, "refusal"),
        "degenerate": _share([(r, v) for r, v in filled if r["verdict"] == "degenerate"], "degenerate"),
        "unaudited": len(rows) - len(filled),
    }


def adversarial_share(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Share of the audited frozen items that kept their label and read fluently, overall and per
    attack, the count of each audit value, and how many rows are still unaudited."""
    filled = _filled(rows, ADVERSARIAL_AUDIT)
    attacks = list(dict.fromkeys(r["attack"] for r in rows))
    hit = ADVERSARIAL_AUDIT[0]
    return {
        "overall": _share(filled, hit),
        "by_attack": {a: _share([(r, v) for r, v in filled if r["attack"] == a], hit) for a in attacks},
        "counts": {v: sum(x == v for _, x in filled) for v in ADVERSARIAL_AUDIT},
        "unaudited": len(rows) - len(filled),
    }
