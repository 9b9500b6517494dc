"""A stack of small MoE layers with null experts: routing sources for the statistics tests."""

from torch import nn

from adamoe.experts import SwiGLUExperts
from adamoe.layer import MoELayer
from adamoe.routing import TopKRouter


def moe_stack(n: int, *, top_k: int = 2) -> nn.Sequential:
    """``n`` MoELayers (H=16, E=4 true + 4 null experts, top-``top_k``) in eval mode."""
    return nn.Sequential(
        *[
            MoELayer(
                router=TopKRouter(hidden_size=16, num_experts=4, top_k=top_k, num_null=4).eval(),
                experts=SwiGLUExperts(num_experts=4, hidden_size=16, intermediate_size=8),
            )
            for _ in range(n)
        ]
    )
