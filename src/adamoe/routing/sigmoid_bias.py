"""Sigmoid scores with a per-expert selection bias (DeepSeek-V3 aux-loss-free balancing).

The bias only shifts *which* experts are selected, never the combination weights. After each training
forward it moves by ``bias_update_rate`` towards balance: overloaded experts down, underloaded up.

Under data parallelism every process sees its own tokens, so local counts would move each process's
bias its own way and the replicas would drift apart. Under an initialised ``torch.distributed`` group of
several processes the counts are summed over all of them first (one all-reduce of E+m numbers on the
router's device, CUDA under NCCL), so every process takes the same step, the one a single process would
take on the union of the batches. A training forward is then a collective: every process runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from adamoe.routing.base import LinearRouter, LinearRouterArgs, Routing, expert_counts
from adamoe.routing.selection import sigmoid_bias_select
from adamoe.utils.distributed import multi_process

if TYPE_CHECKING:
    from typing_extensions import Unpack


class SigmoidBiasRouter(LinearRouter):
    """Sigmoid over E+m logits; the k highest of score + ``selection_bias`` are picked (k fixed)."""

    def __init__(
        self, *, top_k: int, bias_update_rate: float = 1e-3, **router: Unpack[LinearRouterArgs]
    ) -> None:
        """``top_k`` picks per token; ``bias_update_rate`` the balancing step; ``router``: :class:`LinearRouter`'s."""
        super().__init__(**router)
        self.top_k = top_k
        self.bias_update_rate = bias_update_rate
        self.register_buffer("selection_bias", torch.zeros(self.num_total))

    def forward(self, hidden: torch.Tensor, *, token_ids: torch.Tensor | None = None) -> Routing:
        """(T, H) -> Routing; picks on sigmoid + ``selection_bias``, weights from the unbiased scores."""
        logits = self.compute_logits(hidden)
        idx, vals, probs = sigmoid_bias_select(
            logits, self.top_k, num_experts=self.num_experts, bias=self.selection_bias
        )
        weights = self.combine_weights(vals, idx)
        if self.training:
            self.update_bias(idx)
        return self._routing(idx, weights, probs, logits)

    @torch.no_grad()
    def update_bias(self, indices: torch.Tensor) -> None:
        """(T, k) picks -> one sign step of ``selection_bias`` towards equal counts (in place); the counts
        are summed over the processes of an initialised group first (see the module docstring)."""
        counts = expert_counts(indices, self.num_total).float()
        if multi_process():
            dist.all_reduce(counts)
        self.selection_bias += self.bias_update_rate * torch.sign(counts.mean() - counts)
