"""The Mo-LoRA step benchmark: the plain LoRA it is paired with has the same trainable parameters within
the stated half-rank tolerance (counts by hand for SmolLM2 and the tiny model, and as built), the
no-adapter baseline trains nothing but still back-propagates, and the run pairs every variant per round
(no timing asserts); the load comes from the timed batch and the JSON has provenance."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from adamoe.bench.molora import build, lora_count, matched_rank, molora_count, step, target_shapes
from adamoe.bench.provenance import PROVENANCE_FIELDS

ROOT = Path(__file__).resolve().parents[2]

# SmolLM2-135M: H 576, I 1536, 9 heads x 64, 3 kv heads (kv width 192), 30 layers
SMOLLM2 = [(576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576)] * 30
# tiny-llama: H 32, I 64, 4 heads x 8, 2 kv heads (kv width 16), 2 layers
TINY = [(32, 32), (32, 16), (32, 16), (32, 32), (32, 64), (32, 64), (64, 32)] * 2


def test_smollm2_counts_by_hand():
    # per layer: sum(in + out) = 1152 + 768 + 768 + 1152 + 3 * 2112 = 10176, sum(in) = 6 * 576 + 1536 = 4992
    assert lora_count(SMOLLM2, 32) == 32 * 10176 * 30 == 9_768_960
    assert molora_count(SMOLLM2, num_null=0) == (32 * 10176 + 4 * 4992) * 30 == 10_368_000  # routers +6.1%
    assert molora_count(SMOLLM2, num_null=7) == (32 * 10176 + 11 * 4992) * 30 == 11_416_320  # +16.9%
    # 10_368_000 / 305_280 = 33.96 -> 34: +11_520 (+0.11%); 11_416_320 / 305_280 = 37.40 -> 37: -1.06%
    assert matched_rank(SMOLLM2, num_null=0) == (34, 34 * 305_280 - 10_368_000) == (34, 11_520)
    assert matched_rank(SMOLLM2, num_null=7) == (37, 37 * 305_280 - 11_416_320) == (37, -120_960)


@pytest.mark.parametrize("shapes", [SMOLLM2, TINY])
@pytest.mark.parametrize("num_null", [0, 3, 7, 8])
def test_matched_rank_is_within_half_a_rank_step(shapes, num_null):
    rank, diff = matched_rank(shapes, num_null=num_null)
    step_size = lora_count(shapes, 1)
    assert abs(diff) <= step_size / 2
    assert lora_count(shapes, rank) - molora_count(shapes, num_null=num_null) == diff
    # the stated relative tolerance 1 / (2R - 1)
    assert abs(diff) / molora_count(shapes, num_null=num_null) <= 1 / (2 * (rank - 0.5))


@pytest.fixture(scope="module")
def tiny_base():
    from adamoe.hf.models import ModelSpec

    base, _, _ = ModelSpec.parse("tiny-llama").load(seed=0)
    return base.requires_grad_(False)


def test_built_variants_train_the_hand_counted_parameters(tiny_base):
    assert sorted(target_shapes(tiny_base)) == sorted(TINY)
    built = {
        n: build(n, tiny_base, aux_coef=0.0, foreach=False)
        for n in ("top2-dense", "lora:top2", "m7k4-sparse")
    }
    built |= {n: build(n, tiny_base, aux_coef=0.0, foreach=False) for n in ("lora:m7k4", "lora32", "none")}
    # per layer: sum(in + out) = 64 + 48 + 48 + 64 + 96 * 3 = 512, sum(in) = 6 * 32 + 64 = 256
    assert built["top2-dense"].trainable == (32 * 512 + 4 * 256) * 2 == 34_816
    assert built["lora:top2"].trainable == 34 * 512 * 2 == 34_816 and built["lora:top2"].rank == 34  # exact
    assert built["m7k4-sparse"].trainable == (32 * 512 + 11 * 256) * 2 == 38_400
    # 38_400 / 1_024 = 37.5: a tie, rounded up to 38 -> +512 (+1.33%), half a rank step
    assert built["lora:m7k4"].trainable == 38 * 512 * 2 == 38_912 and built["lora:m7k4"].rank == 38
    assert built["lora32"].trainable == 32 * 1024
    none = built["none"]
    assert none.trainable == 0 and none.optimizer is None and not none.routed
    import torch

    ids = torch.randint(0, 200, (2, 5), generator=torch.Generator().manual_seed(0))
    assert step(none, ids) == []  # forward + backward run with nothing to train


def _script():
    spec = importlib.util.spec_from_file_location("molora_step", ROOT / "benchmarks" / "molora_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_pairs_mo_lora_with_its_equal_lora_and_everything_with_none(tmp_path, capsys):
    out = tmp_path / "molora.json"
    argv = ["--model", "tiny-llama", "--variants", "none,lora:top2,top2-dense,m7k4-sparse", "--steps", "1"]
    _script().main(
        [*argv, "--rounds", "2", "--threads", "1", "--batch", "2", "--tokens", "6", "--json", str(out)]
    )
    saved = json.loads(out.read_text())
    assert set(saved["provenance"]) >= set(PROVENANCE_FIELDS)
    rows = saved["variants"]

    def geo(a, b):
        per_round = [x / y for x, y in zip(rows[a]["seconds"], rows[b]["seconds"])]
        return (per_round[0] * per_round[1]) ** 0.5

    assert rows["none"]["ratio_vs_none"] is None and rows["none"]["trainable"] == 0
    top2 = rows["top2-dense"]
    assert top2["equal_lora"] == "lora:top2" and top2["lora_minus_molora"] == 0
    assert top2["ratio_vs_lora"]["n"] == 2 and top2["ratio_vs_lora"]["ratio"] == pytest.approx(
        geo("top2-dense", "lora:top2")
    )
    assert rows["m7k4-sparse"]["ratio_vs_lora"] is None  # its equal LoRA (lora:m7k4) was not timed
    for name in ("lora:top2", "top2-dense", "m7k4-sparse"):
        assert rows[name]["ratio_vs_none"]["ratio"] == pytest.approx(geo(name, "none"))
    assert rows["lora:top2"]["rank"] == 34 and rows["lora:top2"]["matches"] == "top2"
    assert top2["load"] == pytest.approx(2.0)  # no nulls: k true experts per token
    assert 0 < rows["m7k4-sparse"]["load"] < 4
    printed = capsys.readouterr().out
    assert "| top2-dense |" in printed and "| none |" in printed


def test_unknown_variant_names_the_valid_ones(tiny_base):
    with pytest.raises(SystemExit, match="valid: none, lora<rank>, top2-dense"):
        build("lora:top3", tiny_base, aux_coef=0.0, foreach=False)
