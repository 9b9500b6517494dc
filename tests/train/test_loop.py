"""The training loop: loss terms against independent references, accumulation, schedules, checkpoints, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from adamoe.data import MCExample
from adamoe.hf.tiny import tiny_model
from adamoe.losses import routing_aux_loss, z_loss
from adamoe.stats import collect_routings
from adamoe.train import TrainConfig, train
from adamoe.train.data import IGNORE_INDEX

from .tiny_setup import arithmetic_pairs, char_tokenizer, tiny_moe_lm

TOK = char_tokenizer()
PAIRS = arithmetic_pairs(16)


def config(**overrides) -> TrainConfig:
    base = {"lr": 1e-3, "batch_size": 4, "progress": False, "max_grad_norm": None}
    return TrainConfig(**{**base, **overrides})


def hf_batch(pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Independent batch: the tokenizer's own padding, prompt tokens and padding labelled -100."""
    batch = TOK([p + t for p, t in pairs], padding=True, return_tensors="pt")
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = IGNORE_INDEX
    for row, (prompt, _) in enumerate(pairs):
        labels[row, : len(TOK(prompt)["input_ids"])] = IGNORE_INDEX
    return {**batch, "labels": labels}


def routing_terms(model: torch.nn.Module, mask: torch.Tensor, kind: str = "null_aware") -> tuple:
    keep = mask.reshape(-1).bool()
    routings = [r.select(keep) for r in collect_routings(model)]
    return sum(routing_aux_loss(r, kind) for r in routings), sum(z_loss(r.logits) for r in routings)


def test_first_step_losses_match_an_independent_forward() -> None:
    batch = hf_batch(PAIRS[:8])
    reference = tiny_moe_lm()
    with torch.no_grad():
        ref_lm = reference(**batch).loss
        ref_aux, ref_z = routing_terms(reference, batch["attention_mask"])
    cfg = config(batch_size=8, max_steps=1, aux_coef=0.5, z_loss_coef=0.01)
    record = train(tiny_moe_lm(), TOK, PAIRS[:8], cfg).history[0]
    assert record["lm_loss"] == pytest.approx(float(ref_lm), abs=1e-5)
    assert record["aux_loss"] == pytest.approx(float(ref_aux), abs=1e-5)
    assert record["z_loss"] == pytest.approx(float(ref_z), abs=1e-4)
    assert record["loss"] == pytest.approx(float(ref_lm + 0.5 * ref_aux + 0.01 * ref_z), abs=1e-4)
    assert record["coef"] == 0.5 and record["lr"] == 1e-3 and record["step"] == 1


@pytest.mark.parametrize("term", ["aux", "z"])
def test_routing_losses_reach_the_router_gradient(term: str) -> None:
    """grad(coef=c) - grad(coef=0) == c * d(sum over layers of the term)/d(router weight)."""
    batch = hf_batch(PAIRS[:8])
    reference = tiny_moe_lm()
    reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    aux, z = routing_terms(reference, batch["attention_mask"])
    weight = reference.model.layers[0].mlp.router.weight
    (expected,) = torch.autograd.grad(aux if term == "aux" else z, weight)

    def router_grad(coef: float) -> torch.Tensor:
        model = tiny_moe_lm()
        grads: list[torch.Tensor] = []
        model.model.layers[0].mlp.router.weight.register_hook(lambda g: grads.append(g.clone()))
        key = "aux_coef" if term == "aux" else "z_loss_coef"
        train(model, TOK, PAIRS[:8], config(batch_size=8, max_steps=1, **{"aux_coef": 0.0, key: coef}))
        assert len(grads) == 1
        return grads[0]

    big = 1e3
    diff = router_grad(big) - router_grad(0.0)
    assert diff.abs().max() > 1.0
    torch.testing.assert_close(diff / big, expected, rtol=1e-3, atol=1e-5)


SPLITS = [(4, 1), (2, 2), (1, 4)]  # micro-batch x accumulation, all a global batch of 4


def test_micro_batch_split_and_accumulation_keep_the_token_mean_trajectory() -> None:
    """Dense model, same global batch as 4x1, 2x2 and 1x4: same per-step LM losses and weights."""
    runs = []
    for batch_size, accum in SPLITS:
        cfg = config(batch_size=batch_size, grad_accum=accum, max_steps=4, lr=1e-2, trainable="full")
        model = tiny_model("llama")
        history = train(model, TOK, PAIRS, cfg).history
        runs.append(
            ([h["lm_loss"] for h in history], model.model.layers[1].mlp.down_proj.weight.detach().clone())
        )
    for losses, weights in runs[1:]:
        np.testing.assert_allclose(losses, runs[0][0], rtol=1e-6)
        torch.testing.assert_close(weights, runs[0][1], rtol=1e-5, atol=1e-7)
    # Reference for step 1: the token mean over the four examples of the first global batch.
    first = [PAIRS[i] for i in torch.randperm(16, generator=torch.Generator().manual_seed(0))[:4].tolist()]
    with torch.no_grad():
        expected = tiny_model("llama")(**hf_batch(first)).loss
    assert runs[0][0][0] == pytest.approx(float(expected), abs=1e-5)


def test_accumulated_moe_gradient_does_not_depend_on_the_split() -> None:
    """MoE model, LM loss only: the gradient summed over a step's micro-batches is that of the token mean
    over the global batch for every split (aux terms are per micro-batch statistics and would differ)."""

    def step_grads(batch_size: int, accum: int) -> dict[str, torch.Tensor]:
        model = tiny_moe_lm()
        grads: dict[str, torch.Tensor] = {}
        for name, param in model.named_parameters():
            param.register_hook(lambda g, n=name: grads.__setitem__(n, grads.get(n, 0) + g))
        cfg = config(batch_size=batch_size, grad_accum=accum, max_steps=1, aux_loss="none", trainable="full")
        train(model, TOK, PAIRS, cfg)
        return grads

    ref = step_grads(*SPLITS[0])
    for split in SPLITS[1:]:
        grads = step_grads(*split)
        assert grads.keys() == ref.keys()
        for name in ref:
            torch.testing.assert_close(grads[name], ref[name], rtol=1e-4, atol=1e-6, msg=name)


def test_log_schedule_and_fields(tmp_path: Path) -> None:
    cfg = config(
        epochs=2,
        aux_schedule="step",
        aux_coef=0.1,
        aux_coef_end=0.001,
        output_dir=str(tmp_path),
        lr_scheduler="linear",
    )
    result = train(tiny_moe_lm(), TOK, PAIRS, cfg)
    assert result.steps == result.total_steps == 8 and result.steps_per_epoch == 4
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines == json.loads(json.dumps(result.history))
    assert [r["coef"] for r in lines] == [0.1] * 4 + [0.001] * 4
    assert [r["epoch"] for r in lines] == [0] * 4 + [1] * 4
    assert [r["lr"] for r in lines] == pytest.approx([1e-3 * (8 - s) / 8 for s in range(8)])
    for r in lines:
        assert set(r) >= {"step", "loss", "lm_loss", "aux_loss", "z_loss", "coef", "load", "lr"}
        assert 0.0 < r["load"] <= 2.0
        assert r["loss"] == pytest.approx(r["lm_loss"] + r["coef"] * r["aux_loss"])
    layer = result.routing["layers"]["model.layers.0.mlp"]
    assert layer["tokens"] == 2 * sum(len(TOK(p + t)["input_ids"]) for p, t in PAIRS)  # real tokens, 2 epochs
    assert json.loads((tmp_path / "train_config.json").read_text())["aux_coef"] == 0.1


def test_router_only_and_frozen_router(tmp_path: Path) -> None:
    def changed(trainable: str, freeze: bool) -> set[str]:
        model = tiny_moe_lm()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        train(model, TOK, PAIRS, config(max_steps=2, trainable=trainable, freeze_router=freeze, lr=1e-2))
        return {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}

    assert changed("router", False) == {f"model.layers.{i}.mlp.router.weight" for i in range(2)}
    full_frozen = changed("full", True)
    assert full_frozen and not any("router" in n for n in full_frozen)


def test_checkpoints_are_complete_pruned_and_hold_the_trainable_set(tmp_path: Path) -> None:
    cfg = config(max_steps=7, checkpoint_every=2, keep_last=2, trainable="router", output_dir=str(tmp_path))
    model = tiny_moe_lm()
    result = train(model, TOK, PAIRS, cfg)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["step-00000006", "step-00000007"]
    assert result.checkpoint == root / "step-00000007"
    files = {p.name for p in result.checkpoint.iterdir()}
    # Accelerate's save_state layout (model, optimizer, RNG states, our registered trainer state) + meta.
    assert files == {
        "model.safetensors",
        "optimizer.bin",
        "custom_checkpoint_0.pkl",
        "random_states_0.pkl",
        "meta.json",
    }
    weights = load_file(str(result.checkpoint / "model.safetensors"))
    assert sorted(weights) == sorted(result.trainable)
    for name, tensor in weights.items():
        torch.testing.assert_close(tensor, model.get_parameter(name).detach(), rtol=0, atol=0)
    assert json.loads((result.checkpoint / "meta.json").read_text())["step"] == 7


class Crash(RuntimeError):
    pass


def test_resume_after_a_crash_repeats_the_uninterrupted_losses(tmp_path: Path) -> None:
    """In-process variant of the SIGKILL test, with dropout and expert dropout drawing from the RNG."""
    knobs = {
        "epochs": 2,
        "checkpoint_every": 3,
        "dropout": 0.1,
        "expert_dropout": 0.2,
        "trainable": "full",
        "aux_schedule": "step",
        "aux_coef": 0.05,
        "z_loss_coef": 1e-3,
        "lr_scheduler": "cosine",
        "max_grad_norm": 1.0,
    }
    straight = train(tiny_moe_lm(), TOK, PAIRS, config(output_dir=str(tmp_path / "a"), **knobs))

    def crash_at_5(record: dict) -> None:
        if record["step"] == 5:
            raise Crash

    run_dir = tmp_path / "b"
    with pytest.raises(Crash):
        train(tiny_moe_lm(), TOK, PAIRS, config(output_dir=str(run_dir), **knobs), on_step=crash_at_5)
    with pytest.raises(ValueError, match=r"^output_dir: .* already holds a run; set resume=True"):
        train(tiny_moe_lm(), TOK, PAIRS, config(output_dir=str(run_dir), **knobs))
    resumed = train(tiny_moe_lm(seed=0), TOK, PAIRS, config(output_dir=str(run_dir), resume=True, **knobs))
    assert resumed.resumed_from == 3
    assert [r["step"] for r in resumed.history] == [4, 5, 6, 7, 8]
    a = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in b] == list(range(1, 9))
    for key in ("loss", "lm_loss", "aux_loss", "z_loss", "load", "lr", "coef"):
        np.testing.assert_allclose([r[key] for r in b], [r[key] for r in a], rtol=0, atol=1e-6)
    assert straight.history[-1]["loss"] == pytest.approx(resumed.history[-1]["loss"], abs=1e-6)
    # A resumed run that is already complete does nothing.
    again = train(tiny_moe_lm(), TOK, PAIRS, config(output_dir=str(run_dir), resume=True, **knobs))
    assert again.history == [] and again.steps == 8


def test_eval_fn_runs_each_epoch_without_changing_training(tmp_path: Path) -> None:
    calls: list[bool] = []

    def noisy_eval(model: torch.nn.Module) -> dict:
        calls.append(model.training)
        torch.rand(3), np.random.rand(), __import__("random").random()
        return {"acc": 0.5}

    knobs = {"epochs": 2, "dropout": 0.2}
    plain = train(tiny_moe_lm(), TOK, PAIRS, config(**knobs))
    with_eval = train(
        tiny_moe_lm(), TOK, PAIRS, config(output_dir=str(tmp_path), **knobs), eval_fn=noisy_eval
    )
    assert [h["loss"] for h in with_eval.history] == [h["loss"] for h in plain.history]
    assert calls == [False, False]
    assert with_eval.evals == [{"step": 4, "epoch": 0, "acc": 0.5}, {"step": 8, "epoch": 1, "acc": 0.5}]
    assert len((tmp_path / "evals.jsonl").read_text().splitlines()) == 2


def test_mc_examples_and_dense_models() -> None:
    examples = [
        MCExample(id=str(i), context=f"{i}+1=", choices=[str(i), str(i + 1)], label=1, task="t")
        for i in range(8)
    ]
    result = train(tiny_model("llama"), TOK, examples, config(max_steps=2))
    assert result.routing is None
    assert [h["load"] for h in result.history] == [None, None]
    assert [h["aux_loss"] for h in result.history] == [0.0, 0.0]


def test_molora_adapters_train_with_routing() -> None:
    molora = pytest.importorskip("adamoe.hf.molora")
    model = tiny_model("llama")
    molora.inject_molora(model, num_null=2, top_k=2, rank=2)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    result = train(model, TOK, PAIRS, config(max_steps=2, lr=1e-2, trainable="adapters", expert_dropout=0.1))
    assert result.trainable and all("lora_" in n or "router" in n for n in result.trainable)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert result.routing is not None and 0.0 < result.history[0]["load"] <= 2.0


def test_converted_hf_model_gets_the_aux_gradient_on_its_null_router() -> None:
    """A transformers Mixtral converted to null experts is a routing source: the aux loss reaches gate2."""
    convert = pytest.importorskip("adamoe.hf.convert").convert

    def gate2_grad(coef: float) -> torch.Tensor:
        model = convert(tiny_model("mixtral"), null_experts=2, top_k=3)
        grads: list[torch.Tensor] = []
        model.get_parameter("model.layers.0.mlp.gate.gate2").register_hook(lambda g: grads.append(g.clone()))
        result = train(
            model, TOK, PAIRS[:8], config(batch_size=8, max_steps=1, trainable="router", aux_coef=coef)
        )
        assert result.routing is not None and result.history[0]["aux_loss"] > 0
        return grads[0]

    assert (gate2_grad(1e3) - gate2_grad(0.0)).abs().max() > 1.0


def test_resuming_an_old_format_checkpoint_is_one_line(tmp_path: Path) -> None:
    old = tmp_path / "checkpoints" / "step-00000002"
    old.mkdir(parents=True)
    for name in ("weights.safetensors", "optimizer.pt", "trainer_state.pt", "rng-rank0.pt"):
        (old / name).write_bytes(b"")
    (old / "meta.json").write_text(json.dumps({"step": 2}))
    with pytest.raises(ValueError, match=r"^checkpoint: .* is in the pre-Accelerate checkpoint format"):
        train(tiny_moe_lm(), TOK, PAIRS, config(max_steps=4, output_dir=str(tmp_path), resume=True))


def poison_gradient_at(model: torch.nn.Module, calls: set[int]) -> None:
    """Make the first trainable parameter's gradient +inf on the given backward calls (1-based)."""
    param = next(p for p in model.parameters() if p.requires_grad)
    seen = [0]

    def hook(grad: torch.Tensor) -> torch.Tensor:
        seen[0] += 1
        return grad * float("inf") if seen[0] in calls else grad

    param.register_hook(hook)


def test_a_non_finite_gradient_skips_the_step_and_leaves_the_weights_alone() -> None:
    model = tiny_moe_lm()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    poison_gradient_at(model, {1})
    result = train(model, TOK, PAIRS[:4], config(max_steps=1))
    assert result.history[0]["skipped_steps"] == 1 and not np.isfinite(result.history[0]["grad_norm"])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bit-identical: no update happened


def test_training_goes_on_after_a_skipped_step() -> None:
    model = tiny_moe_lm()
    poison_gradient_at(model, {2})
    result = train(model, TOK, PAIRS, config(max_grad_norm=1.0))
    assert [r["skipped_steps"] for r in result.history] == [0, 1, 1, 1]
    assert all(np.isfinite(r["grad_norm"]) for i, r in enumerate(result.history) if i != 1)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(np.isfinite(r["lm_loss"]) for r in result.history)
