"""Subprocess tests of the loop: SIGKILL + resume, and 2 CPU processes (gloo, DDP and FSDP) vs 1 process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CHILD = Path(__file__).with_name("child_train.py")
pytestmark = pytest.mark.slow


def launch(
    script: Path, *argv: str, nproc: int = 1, env: dict | None = None, kill_after: int = 0
) -> subprocess.CompletedProcess:
    """``python script argv...``, under ``torch.distributed.run`` with ``nproc`` > 1 (CPU, gloo)."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "ADAMOE_AUTOTUNE": "0",  # every rank on the same backend, whatever the machine's timing
        "ADAMOE_TEST_KILL_AFTER": str(kill_after),
        **(env or {}),
    }
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return subprocess.run(
        [*launcher, str(script), *argv], env=env, capture_output=True, text=True, timeout=300
    )


def run_child(
    config: dict, result: Path, *, nproc: int = 1, kill_after: int = 0, env: dict | None = None
) -> subprocess.CompletedProcess:
    config = json.dumps({"progress": False, **config})
    return launch(CHILD, config, str(result), nproc=nproc, env=env, kill_after=kill_after)


def why(proc: subprocess.CompletedProcess) -> str:
    """The error lines of a failed child (a launcher's own traceback would hide the rank's)."""
    return "\n".join(line for line in proc.stderr.splitlines() if "Error" in line)[-3000:]


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def assert_like_one_process(one: Path, many: Path, *, steps: int) -> None:
    """Runs in ``one`` (1 process) and ``many`` (2 processes, same global batch) agree; each directory has
    its ``log.jsonl`` and the child's result JSON beside it (``<dir>.json``)."""
    log1, log2 = read_log(one), read_log(many)
    assert [r["step"] for r in log2] == list(range(1, steps + 1))
    # Step 1 runs the same weights on the same tokens: LM loss and load agree to float precision ...
    assert log2[0]["lm_loss"] == pytest.approx(log1[0]["lm_loss"], abs=1e-5)
    assert log2[0]["load"] == pytest.approx(log1[0]["load"], abs=1e-9)
    # ... the aux loss is a per-micro-batch statistic, so the trajectories drift apart only slightly.
    np.testing.assert_allclose([r["loss"] for r in log2], [r["loss"] for r in log1], rtol=2e-3)
    np.testing.assert_allclose([r["lm_loss"] for r in log2], [r["lm_loss"] for r in log1], rtol=2e-3)
    # Routing statistics are summed over both processes: the same token counts as one process.
    routing1 = json.loads(one.with_suffix(".json").read_text())["routing"]
    routing2 = json.loads(many.with_suffix(".json").read_text())["routing"]
    for name, layer in routing1["layers"].items():
        assert routing2["layers"][name]["tokens"] == layer["tokens"]
    assert routing2["load"] == pytest.approx(routing1["load"], rel=0.05)


def test_sigkilled_run_resumes_to_the_same_losses(tmp_path: Path) -> None:
    knobs = {
        "lr": 1e-3,
        "max_steps": 8,
        "checkpoint_every": 3,
        "trainable": "full",
        "dropout": 0.1,
        "expert_dropout": 0.1,
        "aux_schedule": "cosine",
        "z_loss_coef": 1e-3,
    }
    straight = run_child({**knobs, "output_dir": str(tmp_path / "a")}, tmp_path / "a.json")
    assert straight.returncode == 0, straight.stderr[-2000:]

    run_dir = tmp_path / "b"
    killed = run_child({**knobs, "output_dir": str(run_dir)}, tmp_path / "b.json", kill_after=5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [r["step"] for r in read_log(run_dir)] == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000003"]

    resumed = run_child({**knobs, "output_dir": str(run_dir), "resume": True}, tmp_path / "b.json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = read_log(tmp_path / "a"), read_log(run_dir)
    assert [r["step"] for r in b] == list(range(1, 9))
    for key in ("loss", "lm_loss", "aux_loss", "z_loss", "load", "lr", "coef"):
        np.testing.assert_allclose([r[key] for r in b], [r[key] for r in a], rtol=0, atol=1e-6, err_msg=key)
    assert [r["step"] for r in json.loads((tmp_path / "b.json").read_text())["history"]] == [4, 5, 6, 7, 8]


def test_two_processes_match_one_with_the_same_global_batch(tmp_path: Path) -> None:
    knobs = {"lr": 1e-3, "max_steps": 4, "checkpoint_every": 2, "aux_coef": 1e-2}
    one = run_child({**knobs, "batch_size": 4, "output_dir": str(tmp_path / "one")}, tmp_path / "one.json")
    assert one.returncode == 0, one.stderr[-2000:]
    two = run_child(
        {**knobs, "batch_size": 2, "output_dir": str(tmp_path / "two")}, tmp_path / "two.json", nproc=2
    )
    assert two.returncode == 0, two.stderr[-2000:]

    assert_like_one_process(tmp_path / "one", tmp_path / "two", steps=4)
    ckpt = tmp_path / "two" / "checkpoints" / "step-00000004"
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in ckpt.iterdir()}


FSDP_YAML = Path(__file__).parents[2] / "examples" / "accelerate" / "fsdp.yaml"


def launch_env(config_file: Path, **overrides: str) -> dict[str, str]:
    """The variables ``accelerate launch --config_file FILE`` exports to its processes (Accelerate's own
    launch code), so the test runs the example config itself, with ``overrides`` for the tiny model."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(
        ["--config_file", str(config_file), "--num_processes", "2", "x.py"]
    )
    env = prepare_multi_gpu_env(_validate_launch_command(args)[0])
    exported = {k: v for k, v in env.items() if k.startswith(("FSDP_", "ACCELERATE_"))}
    return {**exported, **overrides}


def test_fsdp_two_processes_match_one_and_resume(tmp_path: Path) -> None:
    env = launch_env(
        FSDP_YAML, FSDP_TRANSFORMER_CLS_TO_WRAP="LlamaDecoderLayer", ACCELERATE_MIXED_PRECISION="no"
    )
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "2"
    knobs = {"lr": 1e-3, "max_steps": 6, "checkpoint_every": 2, "aux_coef": 1e-2, "trainable": "full"}
    one = run_child({**knobs, "batch_size": 4, "output_dir": str(tmp_path / "one")}, tmp_path / "one.json")
    assert one.returncode == 0, one.stderr[-2000:]
    two = {**knobs, "batch_size": 2}
    fsdp = run_child({**two, "output_dir": str(tmp_path / "fsdp")}, tmp_path / "fsdp.json", nproc=2, env=env)
    assert fsdp.returncode == 0, why(fsdp)
    # The example config sets fsdp_cpu_ram_efficient_loading, but this child loads the model on every rank
    # (not inside weights_on_main_only): rank 0 says once that rank 1 held weights it did not need.
    assert fsdp.stderr.count("fsdp_cpu_ram_efficient_loading: process(es) 1 loaded the whole model") == 1

    assert_like_one_process(tmp_path / "one", tmp_path / "fsdp", steps=6)
    # The checkpoint is FSDP's own (sharded model and optimizer), written by Accelerate's save_state.
    names = {p.name for p in (tmp_path / "fsdp" / "checkpoints" / "step-00000006").iterdir()}
    assert {"pytorch_model_fsdp_0", "optimizer_0", "random_states_0.pkl", "random_states_1.pkl"} <= names

    # Killed after step 5 (checkpoint at 4), resumed under FSDP: the same losses as the straight FSDP run.
    run_dir = tmp_path / "killed"
    killed = run_child(
        {**two, "output_dir": str(run_dir)}, tmp_path / "k.json", nproc=2, kill_after=5, env=env
    )
    assert killed.returncode != 0
    resumed = run_child(
        {**two, "output_dir": str(run_dir), "resume": True}, tmp_path / "k.json", nproc=2, env=env
    )
    assert resumed.returncode == 0, why(resumed)
    assert [r["step"] for r in json.loads((tmp_path / "k.json").read_text())["history"]] == [5, 6]
    log2, log3 = read_log(tmp_path / "fsdp"), read_log(run_dir)
    assert [r["step"] for r in log3] == list(range(1, 7))
    for key in ("loss", "lm_loss", "aux_loss", "load", "lr"):
        np.testing.assert_allclose(
            [r[key] for r in log3], [r[key] for r in log2], rtol=0, atol=1e-6, err_msg=key
        )
