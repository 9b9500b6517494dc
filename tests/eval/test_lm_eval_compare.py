"""Our scorer against lm-eval's full pipeline (task YAML + json builder + HFLM) on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from adamoe.data import MCExample, load_task
from adamoe.eval.lm_eval_compare import agreement, make_hflm, run_lm_eval, write_lm_eval_tasks
from adamoe.eval.scoring import score_multiple_choice
from adamoe.hf.tiny import tiny_model
from tests.eval.examples import partial_mode_examples

from .test_scoring import build_tiny_tokenizer

pytest.importorskip("lm_eval")


def _examples() -> list[MCExample]:
    return [
        *load_task("synthetic-facts", limit=5),
        *load_task("synthetic-nli", limit=4),
        *partial_mode_examples(),
    ]


def test_written_tasks_split_by_mode(tmp_path: Path) -> None:
    names = write_lm_eval_tasks(_examples(), tmp_path)
    assert names == ["adamoe_mc_std", "adamoe_mc_partial"]
    cfg = yaml.safe_load((tmp_path / "adamoe_mc_partial.yaml").read_text())
    assert cfg["dataset_path"] == "json" and cfg["output_type"] == "multiple_choice"
    rows = [json.loads(x) for x in (tmp_path / "adamoe_mc_partial.jsonl").read_text().splitlines()]
    assert rows[0] == {
        "id": "w1",
        "lm_text": 1,
        "lm_choices": ["The kinsor is red", "The kinsor is a blue one"],
        "lm_target": "and fast.",
    }


def test_per_item_agreement_with_lm_eval_pipeline(tmp_path: Path) -> None:
    tokenizer = build_tiny_tokenizer()
    model = tiny_model("llama", seed=5, vocab_size=len(tokenizer))
    examples = _examples()
    ours = score_multiple_choice(model, tokenizer, examples, progress=False)
    theirs = run_lm_eval(make_hflm(model, tokenizer, batch_size=16), examples, tmp_path)
    report = agreement(ours, theirs)
    assert report["n_items"] == len(examples) and report["missing"] == 0
    assert report["max_abs_loglikelihood_diff"] < 1e-4
    assert report["pred_agreement"] == 1.0 and report["pred_norm_agreement"] == 1.0
    assert theirs.acc == ours.acc and theirs.acc_norm == ours.acc_norm
    assert theirs.n_requests == ours.n_requests
    # lm-eval's own metric aggregation agrees with our per-item correctness flags
    results = theirs.extra["results"]
    std = [r for r, e in zip(ours.records, examples) if e.continuation is None]
    assert results["adamoe_mc_std"]["acc,none"] == pytest.approx(sum(r.correct for r in std) / len(std))
    assert results["adamoe_mc_std"]["acc_norm,none"] == pytest.approx(
        sum(r.correct_norm for r in std) / len(std)
    )
    partial = [r for r, e in zip(ours.records, examples) if e.continuation is not None]
    assert results["adamoe_mc_partial"]["acc,none"] == pytest.approx(
        sum(r.correct for r in partial) / len(partial)
    )
