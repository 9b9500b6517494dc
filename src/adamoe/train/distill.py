"""Recover a freshly built MoE by distillation from the dense model it was made from.

Splitting a dense FFN into routed groups (:func:`adamoe.hf.moefy.moefy`) loses quality fast once the
shared core shrinks: SwiGLU activations are not sparse, so dropping most groups per token drops real
signal. Sparse upcycling recovers such a model by training it on text; here the target is the dense
model's own next-token distribution (a KL on its logits), because it needs no labels and pulls the MoE
back toward the model it should imitate, not toward whatever the recovery text rewards.

Only the MLP blocks train (routed experts, shared expert, router): attention, norms and embeddings
stay the dense model's, so the recovery cannot drift the parts the MoE did not change. The router
trains through the renormalised top-k weights, with the Qwen2-MoE Switch-style balance loss
(``output_router_logits``) at ``aux_coef`` so that no expert starves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from adamoe.utils.seeding import derive_generator

__all__ = ["DistillConfig", "distill", "kl_to_teacher"]


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """Recovery recipe: ``steps`` optimiser steps of ``batch_rows`` packed rows each, AdamW at ``lr``
    (cosine to 10%), balance loss ``aux_coef``; ``seed`` drives the row order (its own stream)."""

    steps: int = 100
    batch_rows: int = 4
    lr: float = 1e-4
    aux_coef: float = 0.01
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.aux_coef < 0:
            raise ValueError(
                f"lr, aux_coef: expected lr > 0 and aux_coef >= 0, got {self.lr}, {self.aux_coef}"
            )


def kl_to_teacher(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean over tokens of KL(teacher ‖ student), both (B, L, V) logits; a scalar in nats.

    Forward KL (teacher first) is the distillation objective: it is the expected extra NLL the student
    pays on the teacher's own samples, so it is zero only when the distributions agree.
    """
    s = F.log_softmax(student_logits.float().flatten(0, -2), dim=-1)
    t = F.log_softmax(teacher_logits.float().flatten(0, -2), dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean")


def _mlp_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(".mlp." in name)
        if p.requires_grad:
            params.append(p)
    if not params:
        raise ValueError("model: no '.mlp.' parameters to recover (expected a transformers MoE decoder)")
    return params


def distill(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    rows: torch.Tensor,
    config: DistillConfig,
    *,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, float]]:
    """Train `student`'s MLP blocks in place to match `teacher` on `rows` (N, L) token ids.

    Returns the history: per step ``{"step", "kl", "aux", "seconds"}``. Rows are drawn without
    replacement in an order from the seed's ``distill.order`` stream, reshuffled per pass.
    """
    params = _mlp_parameters(student)
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps, eta_min=0.1 * config.lr)
    gen = derive_generator(config.seed, "distill.order")
    order = torch.randperm(rows.shape[0], generator=gen)
    pos, history, t0 = 0, [], time.perf_counter()
    student.train()
    teacher.eval()
    for step in range(1, config.steps + 1):
        if pos + config.batch_rows > len(order):
            order, pos = torch.randperm(rows.shape[0], generator=gen), 0
        batch = rows[order[pos : pos + config.batch_rows]]
        pos += config.batch_rows
        with torch.no_grad():
            target = teacher(input_ids=batch, use_cache=False).logits
        out = student(input_ids=batch, use_cache=False, output_router_logits=config.aux_coef > 0)
        kl = kl_to_teacher(out.logits, target)
        aux = out.aux_loss if getattr(out, "aux_loss", None) is not None else kl.new_zeros(())
        loss = kl + config.aux_coef * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        history.append(
            {
                "step": step,
                "kl": float(kl.detach()),
                "aux": float(aux.detach()),
                "seconds": time.perf_counter() - t0,
            }
        )
        if log and (step == 1 or step % 10 == 0 or step == config.steps):
            log(
                f"distill step {step}/{config.steps}: KL {history[-1]['kl']:.4f}, aux {history[-1]['aux']:.3f}"
            )
    student.eval()
    for p in student.parameters():  # back to a freshly loaded model's state
        p.requires_grad_(True)
    return history
