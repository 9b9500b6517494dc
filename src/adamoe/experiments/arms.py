"""The arms of the MoE experiment: top-k, AdaMoE with five ways to weight the picks, a random-null control.

Why (issue 17, item 1): under the paper's option 2 the chosen true experts' weights are renormalised
among themselves. The null logits and the overall level of the true logits then cancel out of every
weight, so the LM loss never reaches the null/true decision and only the aux loss trains ``gate2``
(the measured load stayed at its untrained value). The arms that let the LM loss reach that decision:

- ``m<m>k<k>`` (reference, weights ``opt2``): the paper's option 2 (the family's rule: ``normalize=2``
  for the moefied SmolLM2, which renormalises its top-k).
- ``m<m>k<k>-opt1``: option 1, renormalised over every chosen slot, nulls included (``normalize=1``).
  A token that sends picks to nulls gets a smaller expert output, so the null logits get a gradient.
  The output scale then changes with the number of true picks, a reported difference, not hidden.
- ``m<m>k<k>-ste``: option 2 in the forward pass (the same outputs as the reference), with a
  straight-through estimator on the null/true split. The weights are multiplied by ``s / sg(s)``,
  where ``s`` is the true experts' share of the picked probability mass (computed in log space) and
  ``sg`` stops the gradient. The factor is exactly 1 in the forward pass; its gradient is
  ``w · d log s``, option 1's signal on the split, added to option 2's.
- ``m<m>k<k>-scaled`` and ``m<m>k<k>-ste-scaled`` (issue 17, "option 2 x moefy scaling"): the moefied
  SmolLM2 multiplies each routed expert's ``down_proj`` by its top-k ``k_base`` (4 on the default
  testbed), so that ``k_base`` equally weighted slices sum to the dense FFN. Option 2 renormalises the
  weights of a token's ``j`` true picks to sum to 1, so with ``j < k_base`` each slice is scaled by about
  ``k_base / j`` instead of 1: the expert output is inflated (measured: every option-2 null arm and the
  option-2 control lose ~0.8-1.1 nats of held-out NLL vs top-4). The scaled weighting multiplies the
  option-2 weights by ``j / k_base`` per token (:class:`ScaledRouter`), so each kept slice has the
  weight scale it has in the top-``k_base`` model and the weights sum to ``j / k_base`` (0 for a token
  with no true pick; exactly option 2 at ``j = k_base``). ``k_base`` is the model's top-k before
  conversion: each router's own ``base_top_k``, which :func:`adamoe.hf.convert.convert` sets (one source;
  a router without one is a one-line error). Zero nulls only: with identity nulls option 2 renormalises
  over the null picks too, so the weights would not sum to ``j / k_base`` (a one-line error). ``-ste-scaled``
  adds the straight-through factor on top: the same forward pass as ``-scaled``, plus the split gradient.
- ``top<k>``: the top-k baseline (m = 0).

The **random-null control** (:func:`random_null_control`) asks whether AdaMoE's *learned* choice of
how many experts a token gets beats a coin at the same compute. It takes the trained top-k baseline and,
per layer, keeps the router's best ``n`` true experts of each token. ``n = floor(L) + Bernoulli(L -
floor(L))`` with L the AdaMoE arm's measured Load in that layer (matched load). The weights of the kept
experts follow the AdaMoE arm it matches (:attr:`Arm.control_weights`): renormalised as in option 2 for
the option-2, -opt1 and -ste arms (as before), option 2 times ``n / k_base`` for the scaled arms, so
the normalisation is held equal to the matched arm's.
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
    "ScaledRandomNullRouter",
    "ScaledRouter",
    "ScaledSTERouter",
    "SplitSTERouter",
    "apply_weights",
    "make_ste",
    "parse_arm",
    "random_null_control",
    "split_ste",
    "true_pick_scale",
]

ARM_KINDS = ("opt2", "opt1", "ste", "scaled", "ste-scaled")
_ARM = re.compile(r"^(?:top(?P<topk>\d+)|m(?P<m>\d+)k(?P<k>\d+)(?:-(?P<kind>opt1|ste|scaled|ste-scaled))?)$")
_NEG = -1e30  # finite "minus infinity": logsumexp over masked slots stays finite, so no NaN gradient
_NORMALIZE = {"opt1": 1, "scaled": 2, "ste-scaled": 2}
"""The ``normalize`` mode of each weighting kind that fixes one (the others keep the family's rule): the
one place that says the scaled kinds are defined on option 2."""


@dataclass(frozen=True)
class Arm:
    """One trained arm: ``m`` nulls, top-``k``, and how picks are weighted (``kind``, see module doc)."""

    name: str
    m: int
    k: int
    kind: str = "opt2"

    @property
    def normalize(self) -> int | None:
        """The :func:`adamoe.hf.convert.convert` ``normalize`` mode: 1 for option 1, 2 for the scaled
        kinds (defined on option 2 weights), else None (the family's own rule: option 2 where the model
        renormalises its top-k, as the moefied SmolLM2 does; option 2 scaled to the original top-k mass
        where it keeps raw scores)."""
        return _NORMALIZE.get(self.kind)

    @property
    def control_weights(self) -> str:
        """How the random-null control matched to this arm weights its kept experts: ``scaled`` for the
        scaled kinds, else ``opt2`` (the control is never trained, so the STE factor changes nothing)."""
        return "scaled" if self.kind in ("scaled", "ste-scaled") else "opt2"


def parse_arm(name: str) -> Arm:
    """``"top2"`` -> Arm(m=0, k=2); ``"m8k3"``, ``"m8k3-opt1"``, ``"m8k3-ste"``, ``"m8k3-scaled"``,
    ``"m8k3-ste-scaled"``; else a one-line error."""
    match = _ARM.match(name)
    require(
        match is not None,
        "arms: expected names like top2, m8k3, m8k3-opt1, m8k3-ste, m8k3-scaled or m8k3-ste-scaled "
        f"(m nulls, top-k), got {name!r}",
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


def true_pick_scale(idx: torch.Tensor, *, num_experts: int, base_k: int) -> torch.Tensor:
    """(T, 1) factor ``j / base_k``, ``j`` = the token's true picks (``0 <= idx < num_experts``) in
    idx (T, k): turns option-2 weights (summing to 1) into the top-``base_k`` slice scale."""
    true = (idx >= 0) & (idx < num_experts)
    return true.sum(dim=-1, keepdim=True).float() / base_k


class ScaledRouter(AdaMoERouter):
    """Option 2 times ``j / k_base`` per token (:func:`true_pick_scale`), ``k_base`` the router's own
    ``base_top_k`` (set by :func:`adamoe.hf.convert.convert`), so a kept slice weighs what it weighs in
    the top-``k_base`` model. ``combine``: logits (T, E+m), idx and vals (T, k) -> weights (T, k) summing
    to ``j / k_base`` (zero nulls, checked by :func:`apply_weights`)."""

    def combine(self, logits: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
        weights = super().combine(logits, idx, vals)
        scale = true_pick_scale(idx, num_experts=self.num_experts, base_k=self.base_top_k)
        return weights * scale.to(weights.dtype)


class SplitSTERouter(AdaMoERouter):
    """Option 2 forward, plus the straight-through gradient of :func:`split_ste` on the null/true split."""

    def combine(self, logits: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
        weights = super().combine(logits, idx, vals)
        return weights * split_ste(logits, idx, num_experts=self.num_experts).to(weights.dtype)


class ScaledSTERouter(SplitSTERouter, ScaledRouter):
    """:class:`ScaledRouter`'s weights times the straight-through factor (forward = the scaled arm's)."""


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


class ScaledRandomNullRouter(RandomNullRouter, ScaledRouter):
    """The random-null control with the scaled weighting: option 2 over the kept experts times
    ``n / k_base``, matched to a scaled AdaMoE arm."""


_ROUTERS: dict[tuple[str, bool], type[AdaMoERouter]] = {
    ("ste", False): SplitSTERouter,
    ("scaled", False): ScaledRouter,
    ("ste-scaled", False): ScaledSTERouter,
    ("opt2", True): RandomNullRouter,
    ("scaled", True): ScaledRandomNullRouter,
}


def _check_scaled(name: str, router: AdaMoERouter, kind: str) -> None:
    """A router the scaled weighting ``kind`` can run on, else a one-line error: option 2 (the weighting
    is defined on it), zero nulls (identity nulls would take a share of the weights) and its own
    ``base_top_k >= 1`` (``k_base``: a missing or zero value would divide by zero)."""
    want = _NORMALIZE["scaled"]
    require(
        router.normalize == want,
        f"normalize: the {kind} weighting is defined on option 2 (normalize={want}), {name} has "
        f"normalize={router.normalize}; convert with Arm.normalize",
    )
    require(
        router.null_type == "zero",
        f"null_type: the {kind} weighting needs zero nulls (identity nulls are renormalised with the true "
        f"picks, so the weights would not sum to j / k_base), {name} has {router.null_type!r}",
    )
    k_base = getattr(router, "base_top_k", None)
    require(
        k_base is not None and int(k_base) >= 1,
        f"base_top_k: the {kind} weighting needs the router's top-k before conversion (>= 1), {name} has "
        f"{k_base!r}",
    )


def apply_weights(model: Any, *, kind: str, control: bool = False) -> Any:
    """Give every AdaMoE router of ``model`` the router class of weighting ``kind`` in place (same
    parameters); ``opt2``/``opt1`` arms keep convert's routers. The scaled kinds need routers converted
    with their :attr:`Arm.normalize` (option 2), zero nulls and a ``base_top_k`` (:func:`_check_scaled`).
    ``control``: the random-null control's class of ``kind`` (``opt2`` or ``scaled``)."""
    cls = _ROUTERS.get((kind, control))
    require(
        cls is not None or (kind in ("opt2", "opt1") and not control),
        f"weights: no {'random-null control' if control else 'arm'} router for {kind!r}",
    )
    if cls is None:
        return model
    found = routers(model)
    if issubclass(cls, ScaledRouter):
        for name, router in found:
            _check_scaled(name, router, kind)
    for _, router in found:
        router.__class__ = cls
    return model


def random_null_control(model: Any, loads: Mapping[str, float], *, seed: int, weights: str = "opt2") -> Any:
    """Turn the routers of a trained top-k ``model`` (m = 0) into the random-null control in place.

    ``loads``: per decoder layer (``"0"``, ``"1"``, ...: :func:`adamoe.experiments.tables.layer_group`)
    the Load to match; each router picks ``ceil(L)`` experts and keeps a random ``n`` of the best
    (mean ``L``). ``seed`` seeds one generator per layer, so the control is reproducible. ``weights``:
    ``opt2`` (:class:`RandomNullRouter`, the baseline's own normalisation) or ``scaled``
    (:class:`ScaledRandomNullRouter`: the scaled arms' ``normalize``, so the control is normalised as its
    matched arm, and each router's ``base_top_k`` as ``k_base``), the matched arm's :attr:`Arm.control_weights`.
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
    for _, router in found:  # the baseline was converted with its own rule, not the matched arm's
        router.normalize = _NORMALIZE.get(weights, router.normalize)
    apply_weights(model, kind=weights, control=True)
    for name, router in found:
        layer = layer_group(name)
        router.target_load = float(loads[layer])
        router.top_k = max(1, math.ceil(router.target_load))
        router.generator = torch.Generator().manual_seed(
            seed * 1009 + int(layer) if layer.isdigit() else seed
        )
    return model


def make_ste(model: Any) -> Any:
    """Turn every AdaMoE router of ``model`` into a :class:`SplitSTERouter` in place (same parameters)."""
    return apply_weights(model, kind="ste")
