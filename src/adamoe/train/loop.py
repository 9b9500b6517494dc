"""The fine-tuning loop: LM loss on target tokens + annealed router aux loss + z-loss, on Accelerate.

Loss of one optimizer step (its global batch over all micro-batches and processes)::

    loss = sum(target-token NLL) / (target tokens of the global batch)
           + coef(step) * mean_micro(sum_layers aux) + z_loss_coef * mean_micro(sum_layers z)

With ``objective="mc"`` (:mod:`adamoe.train.objective`) the first term is the choice cross-entropy summed
over items / items of the global batch instead (record key ``mc_loss``, count ``items``); the aux terms
are the same, over every choice row's tokens.

Each micro-batch's NLL sum is scaled by ``grad_accum * processes / target tokens``; Accelerate then
divides by ``grad_accum`` and DDP averages over processes, so the gradient is that of the token mean
over the *global* batch whatever the split. The aux terms are per micro-batch (balance is a batch
statistic) and therefore differ slightly when the split changes.

Determinism: data order comes from :class:`~adamoe.train.data.StepSampler` (seed + epoch), dropout
from the global RNGs, and a checkpoint stores all of them, so a resumed run repeats the losses of an
uninterrupted one. Checkpoints are taken at optimizer-step boundaries only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from tqdm import tqdm
from transformers import get_scheduler

from adamoe.stats import RoutingTap, mean_load
from adamoe.train import checkpoint as ckpt
from adamoe.train import final
from adamoe.train.accelerator import build_accelerator, prepare_model, release
from adamoe.train.config import TrainConfig
from adamoe.train.data import StepSampler, micro_batches, pad_token_id
from adamoe.train.objective import get_objective
from adamoe.train.params import param_groups, select_trainable
from adamoe.train.recipe import expert_dropout, set_dropout
from adamoe.train.runlog import (
    CHECKPOINTS,
    EVAL_FILE,
    LOG_FILE,
    append_jsonl,
    prepare_output,
    tracker_values,
)
from adamoe.utils.seeding import isolated_rng

EvalFn = Callable[[nn.Module], Mapping[str, Any]]
StepFn = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a call to :func:`train` did. ``history``/``evals``/``routing`` cover this call's steps only
    (a resumed call starts at ``resumed_from``; the JSONL logs in ``output_dir`` hold the whole run).
    ``model``: with ``final_dir``, the final LoRA-merged unsharded model on the main process (else None)."""

    steps: int
    total_steps: int
    steps_per_epoch: int
    trainable: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    routing: dict[str, Any] | None = None
    resumed_from: int | None = None
    output_dir: Path | None = None
    checkpoint: Path | None = None
    final_dir: Path | None = None
    model: nn.Module | None = None

    @property
    def final_loss(self) -> float | None:
        return self.history[-1]["loss"] if self.history else None


def train(
    model: nn.Module,
    tokenizer: Any,
    train_pairs: Sequence[Any],
    config: TrainConfig,
    *,
    eval_fn: EvalFn | None = None,
    on_step: StepFn | None = None,
    final_dir: str | Path | None = None,
    save_fn: final.SaveFn | None = None,
) -> TrainResult:
    """Fine-tune ``model`` in place on (prompt, target) pairs or MCExamples (``objective="mc"``: MCExamples
    only) and return a summary.

    ``requires_grad`` is set to the configured trainable set and left so; the model's train/eval mode is
    restored on return. With ``config.resume`` the latest checkpoint in ``output_dir`` is loaded (the model
    must be built the same way as for the first call) and the run continues to its end.

    ``eval_fn(model)`` runs at the end of every epoch and of training (eval mode, no grad, RNG state
    isolated so evaluation never changes the training trajectory), on every process. ``on_step(record)``
    is called with each step's log record after logging and checkpointing.

    ``final_dir``: the full weights are gathered (FSDP too), LoRA merged, and one loadable folder written
    there atomically by the main process (``save_fn(model, folder)``, default ``adamoe.hf.save`` or
    ``save_pretrained`` + ``tokenizer``; :mod:`adamoe.train.final`). Every process must call ``train``; the
    process group is left alive (end the script with :func:`adamoe.train.accelerator.end_distributed`).
    """
    config.validate()
    encoded = get_objective(config.objective).encode(tokenizer, train_pairs, max_length=config.max_length)
    out_dir = Path(config.output_dir) if config.output_dir else None
    accelerator = build_accelerator(config, out_dir)
    set_seed(config.seed, device_specific=True)
    resume_from = prepare_output(out_dir, config, accelerator) if out_dir else None

    trainable = select_trainable(model, config.trainable, freeze_router=config.freeze_router)
    if config.dropout is not None:
        set_dropout(model, config.dropout)
    was_training = model.training
    # Before prepare() shards it: the frame the gathered weights are loaded into on rank 0.
    gather = final_dir and final.is_sharded(accelerator) and accelerator.is_main_process
    frame = final.skeleton(model) if gather else None
    run = _Run(model, tokenizer, encoded, config, accelerator, trainable, out_dir)
    if resume_from is not None:
        run.restore(resume_from)
    result = TrainResult(
        steps=run.step,
        total_steps=run.total_steps,
        steps_per_epoch=run.sampler.steps_per_epoch,
        trainable=trainable,
        resumed_from=run.step if resume_from is not None else None,
        output_dir=out_dir,
    )
    _run_steps(run, result, was_training=was_training, eval_fn=eval_fn, on_step=on_step)
    _finish(run, result, frame=frame, final_dir=final_dir, save_fn=save_fn or final.default_save(tokenizer))
    return result


def _finish(
    run: _Run, result: TrainResult, *, frame: nn.Module | None, final_dir: str | Path | None, save_fn: Any
) -> None:
    """Close a run (collective): routing summary, the final folder, then the accelerator's references are
    dropped (:func:`~adamoe.train.accelerator.release`); the process group stays for the caller."""
    result.steps = run.step
    result.routing = run.routing_summary()
    if result.checkpoint is None and run.out_dir is not None:
        result.checkpoint = ckpt.latest_checkpoint(run.out_dir / CHECKPOINTS)
    if final_dir is not None:
        result.final_dir = Path(final_dir)
        result.model = final.save_final(
            run.accelerator, run.wrapped, run.model, frame=frame, path=result.final_dir, save_fn=save_fn
        )
    run.accelerator.wait_for_everyone()
    # Under bf16/fp16 prepare() wrapped the model's own forward in autocast; the model is the caller's
    # again, so it runs in its own dtype again (else result.model and a reload of its folder differ).
    run.accelerator.unwrap_model(run.wrapped, keep_fp32_wrapper=False)
    run.wrapped = None
    release(run.accelerator)


def _run_steps(
    run: _Run, result: TrainResult, *, was_training: bool, eval_fn: EvalFn | None, on_step: StepFn | None
) -> None:
    """Train until ``run.total_steps``: log into ``result``, evaluate at epoch ends, checkpoint, call
    ``on_step``; the model's train/eval mode is set back to `was_training` however the loop ends."""
    config, out_dir = run.config, run.out_dir
    bar = tqdm(
        total=run.total_steps,
        initial=run.step,
        desc="train",
        disable=not (run.accelerator.is_main_process and config.progress),
        dynamic_ncols=True,
    )
    run.wrapped.train()
    try:
        with run.tap, expert_dropout(run.model, config.expert_dropout):
            while run.step < run.total_steps:
                record = run.train_step()
                result.history.append(record)
                run.accelerator.log(tracker_values(record), step=run.step)
                bar.update(1)
                bar.set_postfix(
                    loss=f"{record['loss']:.4f}", load=_fmt(record["load"]), coef=f"{record['coef']:.1e}"
                )
                last = run.step == run.total_steps
                if eval_fn is not None and (run.sampler.epoch_finished or last):
                    result.evals.append(run.evaluate(eval_fn, epoch=record["epoch"]))
                every = config.checkpoint_every
                if out_dir is not None and ((every and run.step % every == 0) or last):
                    result.checkpoint = run.save(epoch=record["epoch"])
                if on_step is not None:
                    on_step(record)
    finally:
        bar.close()
        run.model.train(was_training)


class _Run:
    """The live objects of one training run and the operations on them."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        encoded: list[Any],
        config: TrainConfig,
        accelerator: Accelerator,
        trainable: list[str],
        out_dir: Path | None,
    ) -> None:
        self.config = config
        self.objective = get_objective(config.objective)
        self.accelerator = accelerator
        self.encoded = encoded
        self.trainable = trainable
        self.out_dir = out_dir
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self.pad_id = pad_token_id(tokenizer)
        self.sampler = StepSampler(
            num_examples=len(encoded), global_batch=config.global_batch(self.world), seed=config.seed
        )
        self.total_steps = config.max_steps or config.epochs * self.sampler.steps_per_epoch
        self.coef_at = config.aux_coefficient(
            steps_per_epoch=self.sampler.steps_per_epoch, total_steps=self.total_steps
        )
        # foreach: one multi-tensor update instead of a Python loop over (many small, LoRA) tensors;
        # torch only picks it by itself on CUDA.
        optimizer = torch.optim.AdamW(
            param_groups(model, trainable, weight_decay=config.weight_decay), lr=config.lr, foreach=True
        )
        # Not passed to accelerator.prepare: Accelerate would step it once per process per step.
        self.scheduler = get_scheduler(
            config.lr_scheduler if config.lr_scheduler != "constant" else "constant_with_warmup",
            optimizer,
            num_warmup_steps=config.warmup_steps,
            num_training_steps=self.total_steps,
        )
        self.wrapped, self.optimizer = prepare_model(accelerator, model, optimizer)
        self.model = accelerator.unwrap_model(self.wrapped)
        self.state = ckpt.TrainerState(scheduler=self.scheduler, sampler=self.sampler)
        accelerator.register_for_checkpointing(self.state)
        if config.trainable != "full":
            accelerator.register_save_state_pre_hook(ckpt.keep_only(self.model, trainable))
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.tap = RoutingTap(self.model)
        self.step = 0
        self.skipped_steps = 0

    def train_step(self) -> dict[str, Any]:
        """One optimizer step over the next global batch; returns its (all-reduced) log record."""
        config = self.config
        epoch, indices = self.sampler.next_step()
        coef = self.coef_at(self.step)
        lr = self.scheduler.get_last_lr()[0]
        n_targets = sum(self.objective.units(self.encoded[i]) for i in indices)
        scale = config.grad_accum * self.world / n_targets
        # Summed on the device (lm, aux, z losses, true slots per layer): read back once per step, in _record.
        sums = torch.zeros(3 + len(self.tap.names), dtype=torch.float64, device=self.accelerator.device)
        tokens = [0] * len(self.tap.names)  # host ints: known from shapes
        grad_norm = None
        chunks = micro_batches(
            indices,
            batch_size=config.batch_size,
            grad_accum=config.grad_accum,
            rank=self.rank,
            world=self.world,
        )
        for chunk in chunks:
            host_batch = self.objective.collate([self.encoded[i] for i in chunk], pad_id=self.pad_id)
            batch = {k: v.to(self.accelerator.device) for k, v in host_batch.items()}
            with self.accelerator.accumulate(self.wrapped):
                # The host copy of the mask: the tap finds the real tokens without a sync.
                self.tap.start(host_batch["attention_mask"])
                nll = self.objective.loss_sum(self.wrapped, batch)  # summed over this chunk's units
                terms = self.tap.terms(aux_kind=config.aux_loss)
                loss = nll * scale + coef * terms.aux + config.z_loss_coef * terms.z
                self.accelerator.backward(loss)
                grad_norm = self._update() if self.accelerator.sync_gradients else grad_norm
            losses = [t.detach().to(sums.device, torch.float64).reshape(1) for t in (nll, terms.aux, terms.z)]
            sums += torch.cat([*losses, terms.true_slots.to(sums.device)])
            tokens = [a + b for a, b in zip(tokens, terms.tokens)]
        self.scheduler.step()
        self.step += 1
        local = torch.cat([sums, torch.tensor(tokens, dtype=torch.float64, device=sums.device)])
        record = self._record(epoch, local, n_targets, coef, lr, grad_norm)
        due = self.step % config.log_every == 0 or self.step == self.total_steps
        if due and self.accelerator.is_main_process and self.out_dir is not None:
            append_jsonl(self.out_dir / LOG_FILE, record)
        return record

    def _update(self) -> float:
        """Clip (when ``max_grad_norm`` is set) and step; returns the gradient's global norm before clipping.

        A non-finite norm skips the optimizer step and counts it in ``skipped_steps``: one overflowing
        batch would otherwise turn every weight into NaN for the rest of the run (a Mo-LoRA run with a
        very sharp router did, at step 15 of 16), as OLMo-core and Megatron skip such steps. Finite steps
        are untouched (clipping at +inf scales by exactly 1).
        """
        limit = self.config.max_grad_norm or math.inf
        grad_norm = float(self.accelerator.clip_grad_norm_(self.params, limit))
        if math.isfinite(grad_norm):
            self.optimizer.step()
        else:
            self.skipped_steps += 1
        self.optimizer.zero_grad()
        return grad_norm

    def _record(
        self,
        epoch: int,
        local_sums: torch.Tensor,
        n_targets: int,
        coef: float,
        lr: float,
        grad_norm: float | None,
    ) -> dict[str, Any]:
        sums = local_sums.to(self.accelerator.device)
        if self.world > 1:  # on the accelerator's device: NCCL reduces CUDA tensors only
            sums = self.accelerator.reduce(sums, reduction="sum")
        sums = sums.cpu()  # the step's one read back to the host
        micro = self.config.grad_accum * self.world
        lm, aux, z = float(sums[0]) / n_targets, float(sums[1]) / micro, float(sums[2]) / micro
        layers = len(self.tap.names)
        return {
            "step": self.step,
            "epoch": epoch,
            "loss": lm + coef * aux + self.config.z_loss_coef * z,
            f"{self.objective.name}_loss": lm,
            "aux_loss": aux,
            "z_loss": z,
            "coef": coef,
            "load": mean_load(sums[3 : 3 + layers].tolist(), sums[3 + layers :].tolist()),
            "lr": lr,
            "grad_norm": grad_norm,
            "skipped_steps": self.skipped_steps,
            self.objective.unit: n_targets,
        }

    def evaluate(self, eval_fn: EvalFn, *, epoch: int) -> dict[str, Any]:
        """Run ``eval_fn`` in eval mode without touching the training RNG streams."""
        self.model.eval()
        try:
            with isolated_rng(), torch.no_grad():
                out = {"step": self.step, "epoch": epoch, **eval_fn(self.model)}
        finally:
            self.wrapped.train()
        if self.accelerator.is_main_process and self.out_dir is not None:
            append_jsonl(self.out_dir / EVAL_FILE, out)
        self.accelerator.log({f"eval/{k}": v for k, v in tracker_values(out).items()}, step=self.step)
        return out

    def routing_summary(self) -> dict[str, Any] | None:
        """Routing statistics of this call's steps, summed over all processes (collective call: the
        recorder's summary all-reduces its device sums in one call, on CUDA under NCCL)."""
        recorder = self.tap.recorder
        if recorder is None or not recorder.layers:
            return None
        return recorder.summary()

    def restore(self, path: Path) -> None:
        """Load a checkpoint into the live objects (Accelerate's load_state; RNG states last)."""
        ckpt.load(self.accelerator, path)
        self.step = self.state.step

    def save(self, *, epoch: int) -> Path:
        """Write one checkpoint atomically through Accelerate's save_state (collective call)."""
        assert self.out_dir is not None
        self.state.step, self.state.epoch = self.step, epoch
        meta = dict(step=self.step, epoch=epoch, num_processes=self.world, trainable=self.trainable)
        meta["config"] = self.config.to_dict()
        root = self.out_dir / CHECKPOINTS
        return ckpt.save(self.accelerator, root, self.step, meta=meta, keep_last=self.config.keep_last)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
