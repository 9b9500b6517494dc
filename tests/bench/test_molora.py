"""The Mo-LoRA step benchmark runs end to end on a tiny model (no timing asserts): every variant is
paired against plain LoRA per round, the load comes from the timed batch, and the JSON has provenance."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from adamoe.bench.provenance import PROVENANCE_FIELDS

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("molora_step", ROOT / "benchmarks" / "molora_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_pairs_every_variant_against_lora(tmp_path, capsys):
    out = tmp_path / "molora.json"
    argv = ["--model", "tiny-llama", "--variants", "lora32,top2-dense,m7k4-sparse", "--steps", "1"]
    _script().main(
        [*argv, "--rounds", "2", "--threads", "1", "--batch", "2", "--tokens", "6", "--json", str(out)]
    )
    saved = json.loads(out.read_text())
    assert set(saved["provenance"]) >= set(PROVENANCE_FIELDS)
    rows = saved["variants"]
    assert rows["lora32"]["ratio_vs_lora"] is None and rows["lora32"]["load"] is None
    for name in ("top2-dense", "m7k4-sparse"):
        r = rows[name]["ratio_vs_lora"]
        per_round = [a / b for a, b in zip(rows[name]["seconds"], rows["lora32"]["seconds"])]
        assert r["n"] == 2 and r["ratio"] == pytest.approx((per_round[0] * per_round[1]) ** 0.5)
    assert rows["top2-dense"]["load"] == pytest.approx(2.0)  # no nulls: k true experts per token
    assert 0 < rows["m7k4-sparse"]["load"] < 4
    assert "| top2-dense |" in capsys.readouterr().out
