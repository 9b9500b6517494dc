"""Child of tests/routing/test_distributed_bias.py: a SigmoidBiasRouter MoE layer trained on a share of
every batch, routing recorded. Usage: ``python child_sigmoid_bias.py OUT_PREFIX`` (under
``torch.distributed.run`` for several processes). Process r takes rows r::world of each 12-token batch
(one process: all of them) and writes ``OUT_PREFIX.<rank>.json``: its final bias and the routing summary.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist

from adamoe.experts import SwiGLUExperts
from adamoe.layer import MoELayer
from adamoe.routing.sigmoid_bias import SigmoidBiasRouter
from adamoe.stats import RoutingRecorder

STEPS, TOKENS, H = 6, 12, 16


def main() -> None:
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    torch.manual_seed(0)
    router = SigmoidBiasRouter(hidden_size=H, num_experts=4, top_k=2, num_null=2, bias_update_rate=0.05)
    layer = MoELayer(router=router, experts=SwiGLUExperts(num_experts=4, hidden_size=H, intermediate_size=8))
    layer.train()
    data = torch.Generator().manual_seed(1)
    batches = [torch.randn(TOKENS, H, generator=data) for _ in range(STEPS)]
    with RoutingRecorder(layer) as rec, torch.no_grad():
        for batch in batches:
            layer(batch[rank::world])
    summary = rec.summary()  # all processes' sums under the group
    out = {"bias": router.selection_bias.tolist(), "summary": summary}
    with open(f"{sys.argv[1]}.{rank}.json", "w") as f:
        json.dump(out, f)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
