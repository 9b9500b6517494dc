"""The arms of the MoE experiment: top-k, AdaMoE with three ways to weight the picks, a random-null control.

Why (issue 17, item 1): under the paper's option 2 the chosen true experts' weights are renormalised
among themselves. The null logits and the overall level of the true logits then cancel out of every
weight, so the LM loss never reaches the null/true decision and only the aux loss trains ``gate2``
(the measured load stayed at its untrained value). The arms that let the LM loss reach that decision:

- ``m<m>k<k>`` (reference): the paper's option 2 (the family's rule: ``normalize=2`` for the moefied
  SmolLM2, which renormalises its top-k).
- ``m<m>k<k>-opt1``: option 1, renormalised over every chosen slot, nulls included (``normalize=1``).
  A token that sends picks to nulls gets a smaller expert output, so the null logits get a gradient.
  The output scale then changes with the number of true picks, a reported difference, not hidden.
- ``m<m>k<k>-ste``: option 2 in the forward pass (the same outputs as the reference), with a
  straight-through estimator on the null/true split. The weights are multiplied by ``s / sg(s)``,
  where ``s`` is the true experts' share of the picked probability mass (computed in log space) and
  ``sg`` stops the gradient. The factor is exactly 1 in the forward pass; its gradient is
  ``w · d log s``, option 1's signal on the split, added to option 2's.
- ``top<k>``: the top-k baseline (m = 0).

The **random-null control** (:func:`random_null_control`) asks whether AdaMoE's *learned* choice of
how many experts a token gets beats a coin at the same compute. It takes the trained top-k baseline and,
per layer, keeps the router's best ``n`` true experts of each token. ``n = floor(L) + Bernoulli(L -
floor(L))`` with L the AdaMoE arm's measured Load in that layer (matched load). The weights of the kept
experts are renormalised as in option 2, so normalisation is held equal to the reference arm's.
The router classes here swap ``__class__`` on converted routers (same parameters, same state dict).
They belong in the experiments layer until an arm proves worth a ``normalize`` mode of its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from adamoe.hf.convert import AdaMoERouter, routers
from adamoe.utils.config import require

__all__ = [
    "ARM_KINDS",
    "Arm",
    "RandomNullRouter",
    "SplitSTERouter",
    "make_ste",
    "parse_arm",
    "random_null_control",
    "split_ste",
]

ARM_KINDS = ("opt2", "opt1", "ste")
_ARM = re.compile(r"^(?:top(?P<topk>\d+)|m(?P<m>\d+)k(?P<k>\d+)(?:-(?P<kind>opt1|ste))?)$")
_NEG = -1e30  # finite "minus infinity": logsumexp over masked slots stays finite, so no NaN gradient


@dataclass(frozen=True)
class Arm:
    """One trained arm: ``m`` nulls, top-``k``, and how picks are weighted (``kind``, see module doc)."""

    name: str
    m: int
    k: int
    kind: str = "opt2"

    @property
    def normalize(self) -> int | None:
        """The :func:`adamoe.hf.convert.convert` ``normalize`` mode: 1 for option 1, else None (the
        family's own rule: option 2 where the model renormalises its top-k, as the moefied SmolLM2 does;
        option 2 scaled to the original top-k mass where it keeps raw scores)."""
        return 1 if self.kind == "opt1" else None


def parse_arm(name: str) -> Arm:
    """``"top2"`` -> Arm(m=0, k=2); ``"m8k3"``, ``"m8k3-opt1"``, ``"m8k3-ste"``; else a one-line error."""
    match = _ARM.match(name)
    require(
        match is not None,
        f"arms: expected names like top2, m8k3, m8k3-opt1 or m8k3-ste (m nulls, top-k), got {name!r}",
    )
    assert match is not None
    if match["topk"] is not None:
        return Arm(name=name, m=0, k=int(match["topk"]))
    return Arm(name=name, m=int(match["m"]), k=int(match["k"]), kind=match["kind"] or "opt2")


def split_ste(logits: torch.Tensor, idx: torch.Tensor, *, num_experts: int) -> torch.Tensor:
    """(T, 1) factor ``s / sg(s)``: value exactly 1, gradient ``d log s``.

    logits: (T, E+m) router logits; idx: (T, k) picks (nulls ``>= num_experts``, empty ``-1``).
    ``s`` = the true picks' share of the picks' softmax mass, in log space:
    ``logsumexp(true picked logits) - logsumexp(all picked logits)``. Tokens without a true pick get
    the constant 1 (their weights are all zero anyway).
    """
    picked = logits.float().gather(1, idx.clamp(min=0))
    valid = idx >= 0
    true = valid & (idx < num_experts)
    log_true = torch.where(true, picked, torch.full_like(picked, _NEG)).logsumexp(dim=-1, keepdim=True)
    log_all = torch.where(valid, picked, torch.full_like(picked, _NEG)).logsumexp(dim=-1, keepdim=True)
    log_s = torch.where(true.any(dim=-1, keepdim=True), log_true - log_all, torch.zeros_like(log_true))
    return torch.exp(log_s - log_s.detach())


class SplitSTERouter(AdaMoERouter):
    """Option 2 forward, plus the straight-through gradient of :func:`split_ste` on the null/true split."""

    def combine(self, logits: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
        weights = super().combine(logits, idx, vals)
        return weights * split_ste(logits, idx, num_experts=self.num_experts).to(weights.dtype)


class RandomNullRouter(AdaMoERouter):
    """Keeps each token's best ``floor(L) + Bernoulli(frac L)`` true experts: a coin instead of a learned
    null decision, at Load ``target_load`` (set by :func:`random_null_control`)."""

    target_load: float = 0.0
    generator: torch.Generator | None = None

    def select(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx, vals, probs = super().select(logits)
        vals, order = vals.sort(dim=-1, descending=True)
        idx = idx.gather(1, order)
        base = math.floor(self.target_load)
        coin = torch.rand(idx.shape[0], generator=self.generator) < self.target_load - base
        keep_n = (base + coin.long()).to(idx.device)
        keep = torch.arange(idx.shape[1], device=idx.device)[None, :] < keep_n[:, None]
        return torch.where(keep, idx, torch.full_like(idx, -1)), vals * keep, probs


def random_null_control(model: Any, loads: Mapping[str, float], *, seed: int) -> Any:
    """Turn the routers of a trained top-k ``model`` (m = 0) into :class:`RandomNullRouter` in place.

    ``loads``: per decoder layer (``"0"``, ``"1"``, ...: :func:`adamoe.experiments.tables.layer_group`)
    the Load to match; each router picks ``ceil(L)`` experts and keeps a random ``n`` of the best
    (mean ``L``). ``seed`` seeds one generator per layer, so the control is reproducible.
    """
    from adamoe.experiments.tables import layer_group

    found = routers(model)
    require(bool(found), "model: the random-null control needs a converted MoE (no AdaMoE routers found)")
    for name, router in found:
        layer = layer_group(name)
        require(layer in loads, f"loads: no matched Load for layer {layer} ({name})")
        load = float(loads[layer])
        require(
            0.0 <= load <= router.num_experts,
            f"loads: layer {layer} Load {load} outside [0, {router.num_experts}]",
        )
        router.__class__ = RandomNullRouter
        router.target_load = load
        router.top_k = max(1, math.ceil(load))
        router.generator = torch.Generator().manual_seed(
            seed * 1009 + int(layer) if layer.isdigit() else seed
        )
    return model


def make_ste(model: Any) -> Any:
    """Turn every AdaMoE router of ``model`` into a :class:`SplitSTERouter` in place (same parameters)."""
    for _, router in routers(model):
        router.__class__ = SplitSTERouter
    return model
