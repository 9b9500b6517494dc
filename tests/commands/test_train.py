"""``adamoe train`` through the CLI: LoRA when the trainable set says so, Mo-LoRA folders from
``adamoe convert --mode molora`` trained and evaluated, the paper's annealing as the default with nulls.

References: the model a spec loads before training (weights compared name by name), the adapter file
written by convert, and the resolved config the verb prints and saves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from adamoe.cli import main
from adamoe.commands.train import resolve_train
from adamoe.hf.io import load
from adamoe.hf.models import ModelSpec
from adamoe.hf.molora import ADAPTER_WEIGHTS_FILE
from adamoe.train import TrainConfig
from tests.experiments.fixtures import one_thread  # noqa: F401  (fixture)
from tests.train.test_loop_subprocess import FSDP_YAML, launch, launch_env, why

TINY_TRAIN = ["--set", "train.max_steps=2", "--set", "train.batch_size=4", "--set", "train.progress=false"]


pytestmark = pytest.mark.usefixtures("one_thread")


def resolved(capsys) -> dict:
    out = capsys.readouterr().out
    block = out.split("resolved config:")[1].split("\n|")[0].split("final loss")[0]
    return yaml.safe_load("resolved config:" + block)["resolved config"]


def test_trainable_lora_injects_lora_and_changes_only_what_it_covers(tmp_path, capsys):
    run = tmp_path / "train"
    argv = ["train", "--model", "tiny-mixtral-adamoe", "--run-dir", str(run), *TINY_TRAIN]
    argv += ["--set", "train.trainable=lora", "--set", "train.lr=0.05", "--set", "train_examples=8"]
    argv += ["--set", "eval_examples=0"]
    assert main(argv) == 0
    cfg = resolved(capsys)
    assert cfg["lora_injected"] is True and cfg["train"]["trainable"] == "lora"
    assert cfg["train"]["aux_schedule"] == "step" and cfg["train"]["aux_loss"] == "null_aware"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["aux_schedule"] == "step"
    before = dict(ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)[0].named_parameters())
    after = dict(load(run / "model").named_parameters())  # LoRA merged: a plain converted checkpoint
    assert set(after) == set(before)
    changed = {n for n in after if not torch.equal(after[n], before[n])}
    covered = {n for n in after if ".mlp.gate." in n or ".mlp.experts." in n}
    assert changed == covered  # router (gate, gate2) and experts via LoRA; attention, norms, embeddings kept


def test_explicit_schedule_wins_and_no_nulls_keeps_the_constant_default():
    adamoe = ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)[0]
    plain = ModelSpec.parse("tiny-mixtral").load(seed=0)[0]
    base = TrainConfig(aux_loss="switch")
    assert resolve_train(base, plain, set()) == base
    paper = resolve_train(base, adamoe, set())
    assert (paper.aux_loss, paper.aux_schedule, paper.aux_boundary) == ("null_aware", "step", "epoch")
    mine = resolve_train(base, adamoe, {"aux_schedule", "aux_loss"})
    assert (mine.aux_loss, mine.aux_schedule) == ("switch", "constant")


def test_molora_convert_train_eval_through_the_cli(tmp_path, capsys):
    conv, trained, ev = tmp_path / "conv", tmp_path / "train", tmp_path / "ev"
    argv = ["convert", "--model", "tiny-llama", "--mode", "molora", "--run-dir", str(conv)]
    for kv in ("null_experts=2", "num_experts=4", "top_k=2", "rank=4"):
        argv += ["--set", kv]
    assert main(argv) == 0
    saved = conv / "model"
    assert (saved / "config.json").is_file() and (saved / "molora_config.json").is_file()
    capsys.readouterr()

    argv = ["train", "--model", str(saved), "--run-dir", str(trained), *TINY_TRAIN]
    argv += ["--set", "train.lr=0.05", "--set", "train_examples=8", "--set", "eval_examples=4"]
    argv += ["--set", "task=synthetic-arith"]
    assert main(argv) == 0
    cfg = resolved(capsys)
    assert cfg["train"]["aux_schedule"] == "step" and cfg["lora_injected"] is False  # nulls: paper annealing
    first = load_file(saved / ADAPTER_WEIGHTS_FILE)
    second = load_file(trained / "model" / ADAPTER_WEIGHTS_FILE)
    assert set(first) == set(second)
    moved = {k for k in first if not torch.equal(first[k], second[k])}
    assert any(".lora_B" in k for k in moved) and any(".router." in k for k in moved)
    base_before, base_after = (
        load_file(saved / "model.safetensors"),
        load_file(trained / "model/model.safetensors"),
    )
    assert all(torch.equal(base_before[k], base_after[k]) for k in base_before)  # the base stays frozen

    argv = ["eval", "--model", str(trained / "model"), "--task", "synthetic-arith", "--limit", "4"]
    assert main([*argv, "--run-dir", str(ev)]) == 0
    row = json.loads((ev / "metrics.json").read_text())["table"][0]
    train_row = json.loads((trained / "metrics.json").read_text())["table"][0]
    assert row["n"] == 4 and 0.0 < row["load"] <= 2.0
    assert (row["acc"], row["load"]) == (
        train_row["acc"],
        train_row["load"],
    )  # the saved model is the trained one


def test_full_fine_tuning_of_a_molora_base_is_refused(tmp_path, capsys):
    conv = tmp_path / "conv"
    assert main(["convert", "--model", "tiny-llama", "--mode", "molora", "--run-dir", str(conv)]) == 0
    argv = ["train", "--model", str(conv / "model"), "--set", "train.trainable=full", *TINY_TRAIN]
    assert main([*argv, "--runs-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "train.trainable: 'full' would change the frozen base" in err


CLI_CHILD = Path(__file__).with_name("child_train_cli.py")
TWO_PROC = ["--model", "tiny-mixtral-adamoe", "--device", "cpu", "--set", "train.trainable=lora"]
TWO_PROC += ["--set", "train.lr=0.02", "--set", "train.batch_size=2", "--set", "train.max_steps=4"]
TWO_PROC += ["--set", "train.checkpoint_every=2", "--set", "train.progress=false"]
TWO_PROC += ["--set", "train_examples=16", "--set", "eval_examples=4"]


def two_processes(*argv: str, kill_after: int = 0):
    """``adamoe train ARGV`` under ``torch.distributed.run`` with 2 CPU processes and the example FSDP2
    config (``examples/accelerate/fsdp.yaml``, as ``accelerate launch`` exports it)."""
    env = launch_env(FSDP_YAML, ACCELERATE_MIXED_PRECISION="no")
    return launch(CLI_CHILD, "train", *TWO_PROC, *argv, nproc=2, env=env, kill_after=kill_after)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_write_one_run_and_resume_to_the_uninterrupted_model(tmp_path):
    """FSDP2 + LoRA over 2 processes: one run directory chosen by rank 0, one model folder, report and
    config printed once, checkpoints complete (both RNG files, no stranded temporaries); killed after step
    3 and resumed from the step-2 checkpoint, the run repeats the uninterrupted losses and final weights."""
    straight = two_processes("--runs-root", str(tmp_path / "runs"))
    assert straight.returncode == 0, why(straight)
    (run,) = (tmp_path / "runs").iterdir()  # one directory, not one per process
    assert straight.stdout.count("resolved config:") == 1 and straight.stdout.count("final loss") == 1
    # The example config's cpu-RAM-efficient loading: rank 1 built the model on the meta device (else
    # rank 0 would warn that process 1 loaded the whole model).
    assert "fsdp_cpu_ram_efficient_loading" not in straight.stderr
    assert {"model", "train", "config.yaml", "metrics.json"} <= {p.name for p in run.iterdir()}
    assert not list(run.rglob(".tmp-*")) and not list(run.rglob(".old-*"))
    ckpt = run / "train" / "checkpoints" / "step-00000004"
    assert {"meta.json", "random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in ckpt.iterdir()}
    assert json.loads((ckpt / "meta.json").read_text())["num_processes"] == 2
    straight_model = dict(load(run / "model").named_parameters())
    untrained = dict(ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)[0].named_parameters())
    assert any(not torch.equal(straight_model[n], untrained[n]) for n in untrained)

    again = tmp_path / "again"
    killed = two_processes("--run-dir", str(again), kill_after=3)
    assert killed.returncode != 0
    assert [p.name for p in (again / "train" / "checkpoints").iterdir()] == ["step-00000002"]
    assert not (again / "model").exists()
    resumed = two_processes("--run-dir", str(again), "--resume")
    assert resumed.returncode == 0, why(resumed)

    log1, log2 = jsonl(run / "train" / "log.jsonl"), jsonl(again / "train" / "log.jsonl")
    assert [r["step"] for r in log2] == [1, 2, 3, 4]
    for key in ("loss", "lm_loss", "aux_loss", "load", "lr"):
        np.testing.assert_allclose([r[key] for r in log2], [r[key] for r in log1], atol=1e-6, err_msg=key)
    resumed_model = dict(load(again / "model").named_parameters())
    for name, param in straight_model.items():
        torch.testing.assert_close(resumed_model[name], param, rtol=0, atol=1e-6, msg=name)
