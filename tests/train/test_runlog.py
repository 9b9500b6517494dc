"""Run logs: JSONL appending and cutting back to a checkpoint's step; tracker helpers and errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from adamoe.train.runlog import append_jsonl, check_tracker, tracker_config, tracker_values, truncate_jsonl


def test_truncate_keeps_steps_up_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    path = tmp_path / "log.jsonl"
    for step in (1, 2, 3):
        append_jsonl(path, {"step": step, "loss": 1.0 / step})
    with path.open("a") as fh:
        fh.write('{"step": 4, "lo')  # died mid-line
    truncate_jsonl(path, keep_through=2)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]


def test_truncate_leaves_a_missing_file_missing(tmp_path):
    truncate_jsonl(tmp_path / "none.jsonl", keep_through=3)
    assert not (tmp_path / "none.jsonl").exists()


def test_tracker_helpers_and_the_missing_tracker_error() -> None:
    record = {"step": 3, "loss": 1.5, "grad_norm": None, "load": 1.25, "flag": True, "name": "x"}
    assert tracker_values(record) == {"step": 3.0, "loss": 1.5, "load": 1.25}
    nested = {"lr": 1e-3, "train": {"seed": 1, "dropout": None, "tags": ["a"]}, "model": "tiny"}
    assert tracker_config(nested) == {"lr": 1e-3, "train.seed": 1, "model": "tiny"}
    check_tracker(None)
    with pytest.raises(
        ValueError, match=r"^log_with: expected one of tensorboard, wandb, trackio, got 'csv'$"
    ):
        check_tracker("csv")
    for name in ("tensorboard", "wandb", "trackio"):
        if importlib.util.find_spec(name) is None:
            with pytest.raises(ValueError, match=rf"^log_with: {name} is not installed; pip install {name} "):
                check_tracker(name)


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is not None, reason="checks the not-installed error"
)
def test_train_with_an_absent_tracker_fails_before_writing(tmp_path: Path) -> None:
    from adamoe.train import TrainConfig, train

    from .tiny_setup import arithmetic_pairs, char_tokenizer, tiny_moe_lm

    cfg = TrainConfig(max_steps=1, progress=False, log_with="tensorboard", output_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match=r"^log_with: tensorboard is not installed; pip install tensorboard"):
        train(tiny_moe_lm(), char_tokenizer(), arithmetic_pairs(4), cfg)
    assert not (tmp_path / "run").exists()


def test_train_sends_each_step_and_eval_to_the_trackers(monkeypatch: pytest.MonkeyPatch) -> None:
    """What reaches ``Accelerator.log`` (Accelerate fans it out to the trackers): every step's numeric
    record at its step, and the evaluation under ``eval/``."""
    from accelerate import Accelerator

    from adamoe.train import TrainConfig, train

    from .tiny_setup import arithmetic_pairs, char_tokenizer, tiny_moe_lm

    calls: list[tuple[dict, int]] = []
    monkeypatch.setattr(
        Accelerator, "log", lambda self, values, step=None, **kw: calls.append((values, step))
    )
    cfg = TrainConfig(max_steps=2, batch_size=4, progress=False)
    result = train(tiny_moe_lm(), char_tokenizer(), arithmetic_pairs(8), cfg, eval_fn=lambda m: {"acc": 0.5})
    assert [step for _, step in calls] == [1, 2, 2]
    assert calls[0][0] == tracker_values(result.history[0])
    assert {"loss", "lm_loss", "aux_loss", "load", "lr"} <= set(calls[0][0])
    assert calls[2][0] == {"eval/step": 2.0, "eval/epoch": 0.0, "eval/acc": 0.5}
