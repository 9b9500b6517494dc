"""`TrainConfig`: every knob of a fine-tuning run, validated up front with one-line errors.

Batch sizes: ``batch_size`` is the micro-batch of one process, so one optimizer step sees
``batch_size * grad_accum * num_processes`` examples (the *global batch*). Keeping the global batch fixed
while changing processes or accumulation leaves the LM loss of every step unchanged, because the loss is
normalised by the target tokens of the whole global batch (see :mod:`adamoe.train.loop`).
"""

from __future__ import annotations

from dataclasses import dataclass

from adamoe.losses import AUX_LOSSES, SCHEDULES, AuxSchedule
from adamoe.utils.config import Config, option, require
from adamoe.utils.device import DEVICES, DTYPES

TRAINABLE_SETS = ("lora", "lora+router", "router", "full", "adapters")
TRACKERS = ("tensorboard", "wandb", "trackio")
LR_SCHEDULERS = ("constant", "linear", "cosine")
OBJECTIVES = ("lm", "mc")


def objective_error(key: str, value: object) -> str:
    """The one-line error for a bad objective at config key `key` (names the choices and the fix)."""
    return f"{key}: expected one of {', '.join(OBJECTIVES)}, got {value!r} (--set {key}=lm or --set {key}=mc)"


@dataclass(kw_only=True)
class TrainConfig(Config):
    """A fine-tuning run.

    Trainable sets: ``lora`` = parameters named ``lora_*``; ``lora+router`` = those plus the routers
    (AdaMoE trains its new null-expert router rows together with the LoRA experts); ``router`` =
    parameters with a ``gate``/``gate2``/``*router*`` name component (``gate_proj`` is an MLP, not a
    router); ``full`` = everything; ``adapters`` = whatever already requires grad (after PEFT / Mo-LoRA
    injection). ``freeze_router`` then removes the routers from any of these sets.

    Aux coefficient: ``aux_schedule`` over optimizer steps from ``aux_coef`` to ``aux_coef_end``
    ("tight then loose"); for ``step`` the switch happens at ``aux_boundary`` steps, where ``"epoch"``
    means after the first epoch.

    Objective (:mod:`adamoe.train.objective`): ``lm`` = cross-entropy on the gold target's tokens, a
    mean over the target tokens of the global batch (pairs or MCExamples); ``mc`` = for multiple-choice
    examples only, cross-entropy over the choices' summed continuation log-likelihoods with the gold
    index as target, a mean over items (every item weighs the same whatever its answer's length, and the
    gradient only separates the choices instead of teaching the label words).

    MoE-RBench recipe knobs: ``dropout`` (None keeps the model's own rates) sets every attention /
    hidden dropout of the model; ``expert_dropout`` drops elements of the routed experts' outputs;
    ``freeze_router``; ``z_loss_coef``.

    Where and how: ``device`` (``auto`` lets Accelerate pick, ``cpu`` forces it), ``dtype`` (bf16/fp16 =
    Accelerate autocast mixed precision over fp32 weights), ``log_with`` (an Accelerate tracker written
    into ``output_dir`` beside the JSONL logs, which are always kept).
    """

    lr: float = option(5e-5, gt=0)
    weight_decay: float = option(0.0, ge=0)
    epochs: int = option(1, ge=1)
    max_steps: int | None = option(None, ge=1)
    batch_size: int = option(8, ge=1)
    grad_accum: int = option(1, ge=1)
    max_length: int = option(512, ge=2)
    seed: int = 0
    objective: str = "lm"
    lr_scheduler: str = option("constant", choices=LR_SCHEDULERS)
    warmup_steps: int = option(0, ge=0)
    max_grad_norm: float | None = option(1.0, gt=0)
    aux_loss: str = option("null_aware", choices=AUX_LOSSES)
    aux_schedule: str = option("constant", choices=SCHEDULES)
    aux_coef: float = option(1e-2, ge=0)
    aux_coef_end: float = option(1e-3, ge=0)
    aux_boundary: int | str = option("epoch", ge=0)
    z_loss_coef: float = option(0.0, ge=0)
    trainable: str = option("adapters", choices=TRAINABLE_SETS)
    freeze_router: bool = False
    dropout: float | None = option(None, ge=0.0, lt=1.0)
    expert_dropout: float = option(0.0, ge=0.0, lt=1.0)
    output_dir: str | None = None
    checkpoint_every: int = option(0, ge=0)
    """Optimizer steps between checkpoints; 0 = only at the end."""
    keep_last: int = option(2, ge=1)
    resume: bool = False
    log_every: int = option(1, ge=1)
    progress: bool = True
    device: str = option("auto", choices=DEVICES)
    dtype: str = option("fp32", choices=DTYPES)
    log_with: str | None = option(None, choices=TRACKERS)

    def check(self) -> None:
        require(self.objective in OBJECTIVES, objective_error(self._name("objective"), self.objective))
        require(
            self.aux_boundary == "epoch" or isinstance(self.aux_boundary, int),
            f"{self._name('aux_boundary')}: expected 'epoch' or an int >= 0, got {self.aux_boundary!r}",
        )
        require(
            self.output_dir is not None or not (self.resume or self.checkpoint_every),
            f"{self._name('output_dir')}: required when checkpoint_every > 0 or resume is set",
        )

    def global_batch(self, num_processes: int = 1) -> int:
        """Examples per optimizer step over all processes."""
        return self.batch_size * self.grad_accum * num_processes

    def aux_coefficient(self, *, steps_per_epoch: int, total_steps: int) -> AuxSchedule:
        """The aux-loss coefficient schedule over optimizer steps of this run."""
        boundary = steps_per_epoch if self.aux_boundary == "epoch" else int(self.aux_boundary)
        return AuxSchedule(
            kind=self.aux_schedule,
            start=self.aux_coef,
            end=self.aux_coef_end,
            boundary=boundary,
            total_steps=max(total_steps, 1),
        ).validate()
