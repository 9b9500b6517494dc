"""The Mo-LoRA module: a frozen ``nn.Linear`` plus a routed mixture of rank-r LoRA experts, two ways to run it.

``y = base(x) + scale * sum_{true picks e} w_e * B_e A_e x`` over the top-k picks of E true + m null
experts (null picks add nothing). Two computations give the same result and the same gradients:

- ``sparse``: the MoE recipe (:func:`adamoe.dispatch.plan`): sort the true slots by expert, gather their
  rows, one small GEMM pair per expert, scatter-add back. Null slots cost no FLOPs.
- ``dense``: every token through all E experts at once, as one rank-``E*r`` LoRA whose ``E*r`` hidden
  columns are scaled by the token's routing weight of their expert (0 when not picked, for null and empty
  slots): ``h = x @ A_cat`` (T, E*r), ``h *= w`` per expert block, ``y = h @ B_cat``. One GEMM pair per
  call, no sort, gather, scatter, host sync or Python loop over experts.

Which is faster (``compute="auto"``, :func:`resolve_compute`). Per token and per feature of ``in + out``
the dense GEMMs spend ``2*E*r`` FLOPs and the sparse ones ``2*load*r``; the sparse path pays instead for
moving about ``load`` elements per feature through gather / scatter-add (forward and backward) plus a
fixed ~15 small ops and a host sync per call. Both sides scale with ``in + out``, so the choice does not
depend on the feature sizes: it turns on ``E*r``. A CPU core moves one element through a gather/scatter
in the time of ~10-30 GEMM FLOPs, so the ``2*(E-load)*r`` FLOPs dense wastes per feature cost less than
the sparse data movement and fixed ops up to about ``E*r = 64`` (:data:`DENSE_MAX_COLUMNS`) at the usual
load ~ E/2 (measured on SmolLM2: at E=4, r=8 sparse dispatch made a training step 1.5x a plain LoRA step
of the same parameters; ``benchmarks/molora_step.py`` re-measures both). Above that, sparse: its FLOP
saving grows with r while its overhead does not.

``rows_processed`` is the number of true slots of the last call in both modes (the rows the sparse path
runs through LoRA, the work the load accounts for); the dense path computes all E experts for every
token and zeroes the unpicked ones. Dropout, when set, masks the input once per token in dense mode and
once per (token, pick) in sparse mode: equal in distribution, different draws.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from adamoe.dispatch import plan
from adamoe.routing.base import Routing
from adamoe.routing.source import RoutingSource
from adamoe.routing.topk import TopKRouter
from adamoe.utils.config import require

__all__ = ["COMPUTE_MODES", "DENSE_MAX_COLUMNS", "MoLoRALinear", "expert_gates", "resolve_compute"]

COMPUTE_MODES = ("auto", "dense", "sparse")
DENSE_MAX_COLUMNS = 64
"""``compute="auto"`` runs dense while ``num_experts * rank`` is at most this (see the module docstring)."""


def resolve_compute(compute: str, *, num_experts: int, rank: int) -> str:
    """``"auto"`` -> ``"dense"`` if ``num_experts * rank <= DENSE_MAX_COLUMNS`` else ``"sparse"``;
    ``"dense"`` / ``"sparse"`` are returned as given."""
    require(compute in COMPUTE_MODES, f"compute: expected one of {COMPUTE_MODES}, got {compute!r}")
    if compute != "auto":
        return compute
    return "dense" if num_experts * rank <= DENSE_MAX_COLUMNS else "sparse"


def expert_gates(routing: Routing, *, empty_slots: bool = True) -> torch.Tensor:
    """(T, k) picks and weights -> (T, E) fp32: each token's routing weight for each true expert.

    0 where the token did not pick the expert. Null slots land in the null columns and empty (``-1``)
    slots in one extra last column (``-1`` wraps there by ``remainder``); both are cut off, so their
    slots get gradient 0 exactly as in the sparse path. ``empty_slots=False`` (a top-k router, which never
    leaves a slot empty) skips the extra column and the ``remainder``; a ``-1`` then fails loudly in
    ``scatter_add``. Differentiable in ``routing.weights`` (the backward is a gather of the picked columns).
    """
    num_tokens, num_experts = routing.num_tokens, routing.num_experts
    width = num_experts + routing.num_null + int(empty_slots)
    index = routing.indices.remainder(width) if empty_slots else routing.indices
    weights = routing.weights.float()
    full = weights.new_zeros(num_tokens, width).scatter_add(1, index, weights)
    return full if width == num_experts else full[:, :num_experts]


class MoLoRALinear(RoutingSource):
    """Frozen ``nn.Linear`` plus a top-k routed mixture of E rank-r LoRA experts (and m null experts).

    Experts are stacked tensors ``lora_A`` (E, r, in) and ``lora_B`` (E, out, r): ``lora_A`` viewed as
    (E*r, in) is already the dense path's concatenated A. ``compute`` ("auto", "dense", "sparse") picks
    the computation (module docstring); it may be changed on a live module.
    """

    def __init__(
        self,
        *,
        base: nn.Linear,
        num_experts: int,
        top_k: int,
        num_null: int = 0,
        rank: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.0,
        null_type: str = "zero",
        normalize: int = 2,
        compute: str = "auto",
    ) -> None:
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.in_features = base.in_features
        self.out_features = base.out_features
        self.num_experts = num_experts
        self.num_null = num_null
        self.top_k = top_k
        self.rank = rank
        self.alpha = alpha
        self.scaling = alpha / rank
        self.compute = compute
        resolve_compute(compute, num_experts=num_experts, rank=rank)  # fail at construction, not later
        device = base.weight.device
        # Adapters stay fp32 whatever the base dtype (PEFT does the same): tiny, and stable to train.
        self.router = TopKRouter(
            hidden_size=self.in_features,
            num_experts=num_experts,
            top_k=top_k,
            num_null=num_null,
            null_type=null_type,
            normalize=normalize,
        ).to(device=device, dtype=torch.float32)
        self.lora_A = nn.Parameter(torch.empty(num_experts, rank, self.in_features, device=device))
        self.lora_B = nn.Parameter(torch.zeros(num_experts, self.out_features, rank, device=device))
        # PEFT's default A init (kaiming_uniform, a=sqrt(5)) per expert is U(-1/sqrt(in), 1/sqrt(in)).
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.lora_A, -bound, bound)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self._last_indices: torch.Tensor | None = None

    @property
    def resolved_compute(self) -> str:
        """``"dense"`` or ``"sparse"``: what ``compute`` means for this module's E and r."""
        return resolve_compute(self.compute, num_experts=self.num_experts, rank=self.rank)

    @property
    def rows_processed(self) -> int:
        """True slots (token rows x true picks) of the last :meth:`lora_delta`; null slots never count.

        Computed on demand from the kept picks, so the forward pays no host sync for it.
        """
        if self._last_indices is None:
            return 0
        idx = self._last_indices
        return int(((idx >= 0) & (idx < self.num_experts)).sum())

    def lora_delta(self, flat: torch.Tensor, routing: Routing) -> torch.Tensor:
        """(T, in) rows + their routing -> (T, out) fp32 weighted LoRA update (scaling included)."""
        self._last_indices = routing.indices
        if self.resolved_compute == "sparse":
            return self._sparse_delta(flat, routing)
        hidden, b_cat = self._dense_parts(flat, routing, empty_slots=True)
        return torch.mm(hidden, b_cat.t()).mul_(self.scaling)

    def _dense_parts(
        self, flat: torch.Tensor, routing: Routing, *, empty_slots: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All E experts as one rank-E*r LoRA with gated hidden columns: ((T, E*r) gated ``x A_cat``,
        (out, E*r) ``B_cat``); the update is ``scaling * hidden @ B_cat^T``. No sort, gather or scatter."""
        num_tokens, e, r = flat.shape[0], self.num_experts, self.rank
        gates = expert_gates(routing, empty_slots=empty_slots)  # (T, E)
        rows = self.dropout(flat.to(self.lora_A.dtype))
        hidden = F.linear(rows, self.lora_A.view(e * r, self.in_features))  # (T, E*r)
        hidden = (hidden.view(num_tokens, e, r) * gates.unsqueeze(-1)).view(num_tokens, e * r)
        # (E, out, r) -> (out, E*r), column e*r + j = B[e, :, j]: one copy of the small B per call.
        return hidden, self.lora_B.transpose(0, 1).reshape(self.out_features, e * r)

    def _sparse_delta(self, flat: torch.Tensor, routing: Routing) -> torch.Tensor:
        """Sort/gather the true slots per expert, a GEMM pair per expert, scatter-add: nulls cost nothing."""
        slot, token, counts = plan(routing)
        out = torch.zeros(flat.shape[0], self.out_features, device=flat.device, dtype=self.lora_A.dtype)
        if token.numel() == 0:
            return out
        rows = self.dropout(flat.index_select(0, token).to(self.lora_A.dtype))
        parts: list[torch.Tensor] = []
        start = 0
        for e, n in enumerate(counts):
            if n == 0:
                continue
            seg = rows[start : start + n]
            parts.append((seg @ self.lora_A[e].t()) @ self.lora_B[e].t())
            start += n
        expert_out = parts[0] if len(parts) == 1 else torch.cat(parts)
        slot_weights = routing.weights.reshape(-1).index_select(0, slot).to(expert_out.dtype)
        return out.index_add(0, token, expert_out * (slot_weights * self.scaling).unsqueeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out): the frozen base output plus the routed LoRA update; publishes the routing."""
        out = self.base(x)
        flat = x.reshape(-1, self.in_features)
        routing = self.router(flat)
        if self.resolved_compute == "dense" and out.dtype == self.lora_A.dtype:
            self._last_indices = routing.indices
            hidden, b_cat = self._dense_parts(flat, routing, empty_slots=False)  # top-k: no empty slot
            # base + scaling * hidden @ B_cat^T as one addmm: the LoRA scale and the add cost no extra op
            flat_out = torch.addmm(out.reshape(-1, self.out_features), hidden, b_cat.t(), alpha=self.scaling)
            out = flat_out.view(out.shape)
        else:
            out = out + self.lora_delta(flat, routing).view(out.shape).to(out.dtype)
        self.publish(routing)
        return out

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"num_experts={self.num_experts}, num_null={self.num_null}, top_k={self.top_k}, "
            f"rank={self.rank}, alpha={self.alpha}, compute={self.compute}"
        )
