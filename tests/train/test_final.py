"""The end product of ``train(final_dir=...)``: one loadable folder holding the trained, LoRA-merged model.

References: the live (unmerged PEFT) model's logits taken inside the run, the model rebuilt from the
folder by ``adamoe.hf.load`` and by plain ``AutoModelForCausalLM``, and the untrained model (training
must have changed it). The two-process runs (FSDP2 and DDP on CPU/gloo) compare the folder with the
still-sharded live model's collective forward and with the gathered model rank 0 saved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

import adamoe.hf  # noqa: F401  (registers the adamoe_<family> Auto classes)
from adamoe.hf.io import load
from adamoe.hf.models import ModelSpec
from adamoe.train import TrainConfig, train
from adamoe.train.final import skeleton, write_folder
from adamoe.train.lora import LoRASettings, apply_lora, merge_lora
from tests.train.test_loop_subprocess import FSDP_YAML, launch, launch_env, why
from tests.train.tiny_setup import arithmetic_pairs

CHILD = Path(__file__).with_name("child_final.py")
IDS = torch.arange(2 * 9).reshape(2, 9) * 7 % 259


def tiny_lora(seed: int = 0) -> tuple[torch.nn.Module, object]:
    model, tok, _ = ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)
    return apply_lora(model, LoRASettings(rank=4, alpha=8), seed=seed), tok


def logits(model: torch.nn.Module, ids: torch.Tensor = IDS) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


def untrained_logits(ids: torch.Tensor = IDS) -> torch.Tensor:
    return logits(ModelSpec.parse("tiny-mixtral-adamoe").load(seed=0)[0], ids)


def test_skeleton_holds_no_weights_and_takes_a_full_state_dict() -> None:
    model, _ = tiny_lora()
    with torch.no_grad():  # B != 0, so the LoRA path matters
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_()
    frame = skeleton(model)
    assert all(p.is_meta for p in frame.parameters())
    assert not any(b.is_meta for b in frame.buffers())
    gathered = {k: v.clone() for k, v in model.state_dict().items()}  # as a gather returns: new tensors
    frame.load_state_dict(gathered, strict=True, assign=True)
    expected = logits(model)
    torch.testing.assert_close(logits(frame), expected, rtol=0, atol=0)
    assert not torch.allclose(expected, untrained_logits(), atol=1e-3)
    torch.testing.assert_close(logits(merge_lora(frame)), expected, rtol=1e-5, atol=1e-5)


def test_write_folder_replaces_the_old_folder_or_leaves_it_intact(tmp_path: Path) -> None:
    path = tmp_path / "model"
    path.mkdir()
    (path / "old.txt").write_text("old")

    def failing(model: torch.nn.Module, out: Path) -> None:
        (out / "half.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_folder(path, torch.nn.Linear(1, 1), failing)
    assert [p.name for p in path.iterdir()] == ["old.txt"]
    write_folder(path, torch.nn.Linear(1, 1), lambda m, out: (out / "new.txt").write_text("new"))
    assert [p.name for p in path.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no .tmp-/.old- leftovers


def test_one_process_final_dir_is_the_trained_merged_model(tmp_path: Path) -> None:
    model, tok = tiny_lora()
    live: list[torch.Tensor] = []

    def on_step(record: dict) -> None:  # the live PEFT model (LoRA unmerged) after the last step
        if record["step"] == 3:
            live.append(logits(model))
            model.train()

    cfg = TrainConfig(lr=0.02, max_steps=3, batch_size=2, trainable="lora", progress=False, seed=0)
    result = train(model, tok, arithmetic_pairs(16), cfg, on_step=on_step, final_dir=tmp_path / "model")
    assert result.final_dir == tmp_path / "model" and result.model is not None
    saved = load(tmp_path / "model")
    assert not any("lora" in n for n, _ in saved.named_parameters())
    torch.testing.assert_close(logits(saved), live[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits(result.model), live[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(logits(saved), untrained_logits(), atol=1e-2)


def run_final_child(tmp_path: Path, *, nproc: int, env: dict, batch_size: int) -> dict[str, torch.Tensor]:
    """child_final.py (LoRA r=4 on the tiny converted Mixtral, 3 steps) in ``tmp_path``; its result tensors."""
    cfg = {"lr": 0.02, "max_steps": 3, "batch_size": batch_size, "trainable": "lora", "progress": False}
    cfg |= {"checkpoint_every": 2, "output_dir": str(tmp_path / "train")}
    folder, out = tmp_path / "model", tmp_path / "result.safetensors"
    tmp_path.mkdir(exist_ok=True)
    proc = launch(CHILD, json.dumps(cfg), str(folder), str(out), nproc=nproc, env=env)
    assert proc.returncode == 0, why(proc)
    return load_file(str(out))


@pytest.fixture(scope="module")
def final_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, dict]]:
    """``run(engine)`` -> (its directory, its result tensors), each run once per module: "fsdp" and "ddp"
    are 2 CPU processes with batch 2 (FSDP2 from the example config: cpu-RAM-efficient loading, so rank
    1 builds on the meta device), "one" is 1 process with batch 4 (the same global batch)."""
    done: dict[str, tuple[Path, dict]] = {}

    def run(engine: str) -> tuple[Path, dict]:
        if engine not in done:
            env = launch_env(FSDP_YAML, ACCELERATE_MIXED_PRECISION="no") if engine == "fsdp" else {}
            path = tmp_path_factory.mktemp(engine)
            nproc, batch = (1, 4) if engine == "one" else (2, 2)
            done[engine] = path, run_final_child(path, nproc=nproc, env=env, batch_size=batch)
        return done[engine]

    return run


def meta_counts(run_dir: Path) -> list[dict]:
    """Per rank: its tensors (parameters + buffers) and how many were on the meta device before train()."""
    return [json.loads((run_dir / f"result.safetensors.rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["fsdp", "ddp"])
def test_two_processes_end_with_one_loadable_folder(final_runs: Callable, engine: str) -> None:
    """2 CPU processes, LoRA on the tiny converted Mixtral, with the example FSDP2 config (MixtralDecoderLayer
    units) or DDP: the folder reloads in this one process to the live model's and the gathered logits."""
    run_dir, result = final_runs(engine)
    folder = run_dir / "model"
    rank_files = [f"result.safetensors.rank{r}.json" for r in (0, 1)]
    assert sorted(p.name for p in run_dir.iterdir()) == ["model", "result.safetensors", *rank_files, "train"]
    saved = load(folder)
    torch.testing.assert_close(logits(saved, result["ids"]), result["gathered"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits(saved, result["ids"]), result["live"], rtol=1e-5, atol=1e-5)
    auto = AutoModelForCausalLM.from_pretrained(folder)
    torch.testing.assert_close(logits(auto, result["ids"]), result["gathered"], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(result["gathered"], untrained_logits(result["ids"]), atol=1e-2)
    if engine == "fsdp":
        names = {p.name for p in (run_dir / "train" / "checkpoints" / "step-00000003").iterdir()}
        assert {"pytorch_model_fsdp_0", "random_states_0.pkl", "random_states_1.pkl"} <= names


@pytest.mark.slow
def test_fsdp_rank1_built_on_meta_trains_as_if_it_had_loaded(final_runs: Callable) -> None:
    """fsdp_cpu_ram_efficient_loading made real: under the example FSDP config rank 1 built the converted
    model and its LoRA on the meta device (no weight in its host RAM), and prepare() filled its shards from
    rank 0. The run equals DDP's, where every rank loaded the weights, and its first step equals one
    process's on the same global batch (both would be off by O(1) were rank 1's shards not rank 0's)."""
    fsdp_dir, fsdp = final_runs("fsdp")
    ddp_dir, ddp = final_runs("ddp")
    _, one = final_runs("one")
    ranks = meta_counts(fsdp_dir)
    assert ranks[0]["on_meta"] == 0 and ranks[1]["tensors"] > 0
    assert ranks[1]["on_meta"] == ranks[1]["tensors"]
    assert [r["on_meta"] for r in meta_counts(ddp_dir)] == [0, 0]
    torch.testing.assert_close(fsdp["lm_loss"][0], one["lm_loss"][0], rtol=0, atol=1e-5)
    torch.testing.assert_close(fsdp["lm_loss"], ddp["lm_loss"], rtol=0, atol=1e-5)
    torch.testing.assert_close(fsdp["gathered"], ddp["gathered"], rtol=0, atol=1e-4)
