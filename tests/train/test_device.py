"""Device and precision: one-line errors for absent devices, bf16 mixed precision on CPU, CUDA paths.

bf16 is checked against an independent forward of the same model under ``torch.autocast("cpu", bf16)``
(what Accelerate's ``mixed_precision="bf16"`` must amount to); CUDA tests are skipped without a GPU.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from adamoe.cli import main
from adamoe.train import TrainConfig, train
from adamoe.utils.device import accelerator_kwargs, check_device, resolve_device, torch_dtype

from .test_loop import PAIRS, TOK, config, hf_batch
from .tiny_setup import tiny_moe_lm

NO_CUDA = not torch.cuda.is_available()
needs_cuda = pytest.mark.cuda  # skipped without a GPU (tests/conftest.py); selected by `pytest -m cuda`
no_cuda_only = pytest.mark.skipif(not NO_CUDA, reason="checks the message shown when CUDA is absent")


@no_cuda_only
def test_absent_cuda_is_one_line_with_the_fix() -> None:
    expected = "device: cuda requested but torch.cuda.is_available() is False; use --device cpu"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_device("cuda")
    with pytest.raises(ValueError, match=r"^device: cuda requested"):
        train(tiny_moe_lm(), TOK, PAIRS, config(max_steps=1, device="cuda"))
    assert resolve_device("auto") == torch.device("cpu") or torch.backends.mps.is_available()


def test_fp16_on_cpu_and_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^dtype: fp16 needs a GPU .*; use --dtype bf16 or fp32$"):
        check_device("cpu", "fp16")
    with pytest.raises(ValueError, match=r"^device: expected one of auto, cpu, cuda, mps, got 'gpu'$"):
        check_device("gpu")
    with pytest.raises(ValueError, match=r"^dtype: expected one of fp32, bf16, fp16, got 'half'$"):
        torch_dtype("half")
    with pytest.raises(ValueError, match=r"^device: expected one of"):
        TrainConfig(device="gpu").validate()
    assert accelerator_kwargs("cpu", "bf16") == {"cpu": True, "mixed_precision": "bf16"}
    # auto without a GPU must force cpu: Accelerate joins a gloo group under torchrun only with cpu=True.
    gpu = torch.cuda.is_available() or torch.backends.mps.is_available()
    assert accelerator_kwargs("auto", "fp32") == {"cpu": not gpu, "mixed_precision": "no"}
    assert torch_dtype("bf16") is torch.bfloat16


def test_bf16_training_on_cpu_is_autocast_over_fp32_weights() -> None:
    batch = hf_batch(PAIRS[:8])
    reference = tiny_moe_lm()
    with torch.no_grad():
        fp32_lm = float(reference(**batch).loss)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_lm = float(reference(**batch).loss)
    assert (
        abs(bf16_lm - fp32_lm) > 1e-4
    )  # the tiny model does notice bf16, so the check below means something
    model = tiny_moe_lm()
    result = train(model, TOK, PAIRS[:8], config(batch_size=8, max_steps=3, device="cpu", dtype="bf16"))
    first = result.history[0]["lm_loss"]
    assert first == pytest.approx(bf16_lm, abs=2e-3)
    assert abs(first - bf16_lm) < abs(first - fp32_lm)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    assert result.history[-1]["lm_loss"] < first  # it trains
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # master weights stay fp32


def test_after_bf16_training_the_model_runs_in_its_own_dtype_again(tmp_path: Path) -> None:
    """prepare() wraps the model's forward in autocast; train() returns it unwrapped: its logits are those
    of its saved folder reloaded in fp32 (with the wrapper left on: 1.4e-2 apart after these 2 steps, 1.02
    after 4)."""
    from adamoe.hf.io import load
    from adamoe.hf.models import ModelSpec

    from .tiny_setup import arithmetic_pairs

    model, tok, _ = ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)
    cfg = config(max_steps=2, device="cpu", dtype="bf16", trainable="full")
    result = train(model, tok, arithmetic_pairs(8), cfg, final_dir=tmp_path / "model")
    ids = torch.arange(2 * 9).reshape(2, 9) * 7 % 128
    with torch.no_grad():
        ours, saved = model.eval()(input_ids=ids).logits, load(tmp_path / "model")(input_ids=ids).logits
    assert result.model is model and ours.dtype == torch.float32
    torch.testing.assert_close(ours, saved, rtol=1e-5, atol=1e-5)


def test_cli_train_bf16_on_cpu(tmp_path: Path) -> None:
    run = tmp_path / "train"
    args = ["train", "--model", "tiny-mixtral-adamoe", "--run-dir", str(run), "--device", "cpu"]
    args += ["--dtype", "bf16", "--set", "train_examples=8", "--set", "eval_examples=0"]
    args += ["--set", "train.max_steps=2", "--set", "train.batch_size=4", "--set", "train.progress=false"]
    assert main(args) == 0
    saved = json.loads((run / "train" / "train_config.json").read_text())
    assert saved["device"] == "cpu" and saved["dtype"] == "bf16" and saved["log_with"] is None
    assert len((run / "train" / "log.jsonl").read_text().splitlines()) == 2


def test_eval_verbs_load_the_model_in_the_requested_dtype(tmp_path: Path) -> None:
    """Evaluation/inference: ``--dtype`` is the model dtype and ``--device`` its device (no autocast)."""
    from argparse import Namespace

    from adamoe.commands.common import model_placement
    from adamoe.hf.models import ModelSpec

    assert model_placement(Namespace(device=None, dtype=None)) == {"device": torch.device("cpu")}
    placement = model_placement(Namespace(device="cpu", dtype="bf16"))
    assert placement == {"device": torch.device("cpu"), "dtype": torch.bfloat16}
    model, _, _ = ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0, **placement)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    args = ["eval", "--model", "tiny-mixtral-adamoe", "--device", "cpu", "--dtype", "bf16"]
    assert main([*args, "--set", "limit=4", "--run-dir", str(tmp_path / "ev")]) == 0
    assert (tmp_path / "ev" / "metrics.json").is_file()


@no_cuda_only
def test_cli_cuda_without_a_gpu_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["train", "--model", "tiny-mixtral-adamoe", "--runs-root", str(tmp_path), "--device", "cuda"]
    assert main([*args, "--set", "train_examples=4", "--set", "eval_examples=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "adamoe train: error: device: cuda requested but torch.cuda.is_available() is False; use --device cpu"
    )


@needs_cuda
def test_cuda_experts_use_grouped_mm_and_match_the_reference() -> None:
    from adamoe.experts.grouped_mm import grouped_swiglu, grouped_swiglu_reference

    gen = torch.Generator().manual_seed(0)
    counts = [3, 0, 5, 2]
    rows = torch.randn(10, 16, generator=gen)
    gate_up, down = torch.randn(4, 24, 16, generator=gen), torch.randn(4, 16, 12, generator=gen)
    expected = grouped_swiglu_reference(rows, gate_up, down, counts)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        got = grouped_swiglu(rows.cuda(), gate_up.cuda(), down.cuda(), counts)
    torch.testing.assert_close(got.float().cpu(), expected, rtol=3e-2, atol=3e-2)


@needs_cuda
def test_bf16_training_on_cuda() -> None:
    result = train(
        tiny_moe_lm(), TOK, PAIRS[:8], config(batch_size=8, max_steps=3, device="cuda", dtype="bf16")
    )
    assert result.history[-1]["lm_loss"] < result.history[0]["lm_loss"]


def test_eval_verbs_default_to_the_auto_device(monkeypatch) -> None:
    """No ``--device``: the device ``auto`` stands for (a GPU when present), the checkpoint's own dtype."""
    from argparse import Namespace

    import adamoe.utils.device as device_mod
    from adamoe.commands.common import model_placement

    monkeypatch.setattr(
        device_mod, "resolve_device", lambda d="auto": torch.device("cuda" if d == "auto" else d)
    )
    assert model_placement(Namespace(device=None, dtype=None)) == {"device": torch.device("cuda")}
    assert model_placement(Namespace(device="cpu", dtype=None))["device"] == torch.device("cpu")
