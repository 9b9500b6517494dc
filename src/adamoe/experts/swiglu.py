"""Grouped SwiGLU experts stored as fused 3D parameters in the transformers 5.x layout.

``gate_up_proj`` (E, 2I, H) holds [gate; up] rows, ``down_proj`` (E, H, I): the same tensors a
``MixtralExperts`` module holds, so weights move between adamoe and HF models without reshaping.

``forward_grouped`` takes rows already sorted by expert (``counts[e]`` rows for expert e) and returns
their expert outputs in the same order. Null and empty slots never reach it: dispatch drops them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from adamoe.experts import kernels
from adamoe.experts.backend import AUTO, swiglu_function
from adamoe.experts.grouped_mm import grouped_swiglu, grouped_swiglu_reference

if TYPE_CHECKING:
    from adamoe.routing.base import Routing
    from adamoe.routing.topk import TopKRule

BACKENDS = (AUTO, "grouped", "torch_grouped_mm", "loop")  # auto: adamoe.experts.backend.choose_backend


class SwiGLUExperts(nn.Module):
    def __init__(
        self, *, num_experts: int, hidden_size: int, intermediate_size: int, backend: str = "auto"
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        self.num_experts = num_experts
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.backend = backend
        self.gate_up_proj = nn.Parameter(torch.empty(num_experts, 2 * intermediate_size, hidden_size))
        self.down_proj = nn.Parameter(torch.empty(num_experts, hidden_size, intermediate_size))
        nn.init.normal_(self.gate_up_proj, std=hidden_size**-0.5)
        nn.init.normal_(self.down_proj, std=intermediate_size**-0.5)
        self.rows_processed = 0  # rows fed to the expert GEMMs by the last call (for tests and stats)

    def forward_grouped(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor:
        self.rows_processed = int(rows.shape[0])
        return swiglu_function(self.backend)(rows, self.gate_up_proj, self.down_proj, counts)

    def _decode_weights(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(E, 2I, H), (E, H, I) weights for the fused decode kernels, or None: explicit
        ``torch_grouped_mm`` or ``loop`` backends keep their own path, and so does a ``forward_grouped``
        wrapped on the instance (expert dropout, recorders), which must see every call. None under
        ``torch.compile`` too, before any kernel is touched: the C++ kernels (and the file-system check that
        finds them) cannot be traced, and would break the graph at every MoE layer (issue 20)."""
        if torch.compiler.is_compiling():
            return None
        if self.backend not in (AUTO, "grouped") or "forward_grouped" in self.__dict__:
            return None
        return self.gate_up_proj, self.down_proj

    def forward_decode(self, hidden: torch.Tensor, routing: Routing) -> torch.Tensor | None:
        """(T, H) -> (T, H) routed output of the true slots in one fused kernel call, or None (not taken).

        `adamoe.dispatch.dispatch` tries this first: for inference at decode (see ``kernels.moe_decode``)
        it replaces sort, gather, grouped SwiGLU and weighted scatter (see :meth:`_decode_weights`).
        """
        weights = self._decode_weights()
        if weights is None:
            return None
        done = kernels.moe_decode(hidden, *weights, routing.indices, routing.weights, routing.num_experts)
        if done is None:
            return None
        out, self.rows_processed = done
        return out

    def forward_decode_routed(self, hidden: torch.Tensor, rule: TopKRule) -> kernels.RoutedDecode | None:
        """Routing by ``rule`` and the routed output of (T, H) ``hidden`` in one kernel call, or None.

        `adamoe.layer.MoELayer` tries this before its router at decode: the router GEMV, softmax, top-k,
        the weights and the expert step all run in ``kernels.moe_decode_routed`` (identity nulls'
        ``weight * x`` included), so no torch op runs between routing and compute.
        """
        weights = self._decode_weights()
        if weights is None:
            return None
        done = kernels.moe_decode_routed(
            hidden,
            rule.weight,
            *weights,
            num_experts=rule.num_experts,
            top_k=rule.top_k,
            normalize=rule.normalize,
            identity_nulls=rule.identity_nulls,
            null_bias=rule.null_bias,
        )
        if done is not None:
            self.rows_processed = done.slots
        return done

    def fused_swiglu_weights(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(E, 2I, H), (E, H, I) weights for :func:`adamoe.dispatch.dispatch_sync_free` (one
        ``torch._grouped_mm`` per projection, no host sync) and, under ``torch.compile``, for the op
        :func:`adamoe.dispatch.moe_routed_swiglu` (run on this module's backend), or None: the explicit
        ``grouped``/``loop`` backends keep their own kernel."""
        if self.backend not in (AUTO, "torch_grouped_mm"):
            return None
        return self.gate_up_proj, self.down_proj

    def expert_flops_per_token(self) -> int:
        """Multiply-adds x2 of one token through one expert (gate, up and down projections)."""
        return 2 * 3 * self.hidden_size * self.intermediate_size


class LoRASwiGLUExperts(SwiGLUExperts):
    """Frozen base experts plus a rank-r LoRA update per expert on both projections.

    delta_W = B @ A * (alpha / r) with B initialised to zero, so the module equals its base at init.
    Runs as base grouped SwiGLU on ``W + delta_W`` materialised per call: at LoRA ranks and the
    expert counts used here the merge is cheaper than extra skinny GEMMs per expert.
    """

    def __init__(
        self,
        *,
        num_experts: int,
        hidden_size: int,
        intermediate_size: int,
        rank: int,
        alpha: float,
        backend: str = "grouped",
    ) -> None:
        super().__init__(
            num_experts=num_experts,
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            backend=backend,
        )
        self.rank = rank
        self.scaling = alpha / rank
        self.gate_up_proj.requires_grad_(False)
        self.down_proj.requires_grad_(False)
        self.lora_A_gate_up = nn.Parameter(torch.empty(num_experts, rank, hidden_size))
        self.lora_B_gate_up = nn.Parameter(torch.zeros(num_experts, 2 * intermediate_size, rank))
        self.lora_A_down = nn.Parameter(torch.empty(num_experts, rank, intermediate_size))
        self.lora_B_down = nn.Parameter(torch.zeros(num_experts, hidden_size, rank))
        nn.init.normal_(self.lora_A_gate_up, std=hidden_size**-0.5)
        nn.init.normal_(self.lora_A_down, std=intermediate_size**-0.5)

    def forward_decode(self, hidden: torch.Tensor, routing: Routing) -> None:
        """Never taken: the base weights alone would ignore the LoRA update (dispatch merges per call)."""
        return None

    def forward_decode_routed(self, hidden: torch.Tensor, rule: TopKRule) -> None:
        """Never taken, for the same reason as :meth:`forward_decode`."""
        return None

    def fused_swiglu_weights(self) -> None:
        """Never taken, for the same reason as :meth:`forward_decode`."""
        return None

    def merged_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        gate_up = self.gate_up_proj + torch.bmm(self.lora_B_gate_up, self.lora_A_gate_up) * self.scaling
        down = self.down_proj + torch.bmm(self.lora_B_down, self.lora_A_down) * self.scaling
        return gate_up, down

    def forward_grouped(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor:
        self.rows_processed = int(rows.shape[0])
        gate_up, down = self.merged_weights()
        if self.backend == "loop":
            return grouped_swiglu_reference(rows, gate_up, down, counts)
        return grouped_swiglu(rows, gate_up, down, counts)
