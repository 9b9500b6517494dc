"""The two questions low-level code asks of ``torch.distributed``: is there a group to sum over, and on
which device can it sum.

Why here: the sigmoid-bias router (routing) and the routing statistics (stats) both all-reduce small
count vectors when they run data-parallel, and neither may import the training stack that forms the
group. NCCL reduces CUDA tensors only; gloo (the CPU runs and the tests) reduces CPU tensors.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["multi_process", "reduce_device"]


def multi_process() -> bool:
    """Whether an initialised ``torch.distributed`` group of more than one process exists."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def reduce_device() -> torch.device:
    """Where the default group can all-reduce: the current CUDA device under NCCL, else the CPU."""
    if "nccl" in str(dist.get_backend()):
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
