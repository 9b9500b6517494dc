"""The end product of a training run: one loadable model folder, written once, by the main process.

Why this lives inside :func:`adamoe.train.train` and not after it: under FSDP (or DeepSpeed ZeRO-3) each
process holds only a shard of every weight when training ends, and the full weights can only be gathered
while the process group exists. They are gathered with Accelerate's ``get_state_dict`` (FSDP2:
``torch.distributed.checkpoint``'s full state dict, offloaded to the CPU of rank 0) and loaded into a
*skeleton*: a copy of the model taken before sharding whose parameters sit on the meta device (no memory),
so the LoRA merge and the save run on an ordinary, unsharded module. Without sharding the live model on
rank 0 is already whole and is used directly.

The folder is written into a hidden sibling (``.tmp-<name>``) and renamed into place, so a crash leaves
the previous folder or none, never a half-written one; every process waits for rank 0 to finish.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch import nn

from adamoe.train.lora import merge_lora

SaveFn = Callable[[nn.Module, Path], None]
"""Writes a (merged, unsharded) model into an existing empty folder."""


def is_sharded(accelerator: Accelerator) -> bool:
    """Whether the engine splits the weights over processes (FSDP, DeepSpeed), so no process holds them all."""
    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def skeleton(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose parameters are on the meta device (buffers copied: they are small, and
    non-persistent ones such as rotary ``inv_freq`` are not in any state dict). Taken before the model is
    sharded; tied parameters stay tied (one meta tensor per parameter object)."""
    memo: dict[int, Any] = {
        id(p): nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
        for p in model.parameters()
    }
    return copy.deepcopy(model, memo)


def gathered_model(
    accelerator: Accelerator, wrapped: nn.Module, model: nn.Module, frame: nn.Module | None
) -> nn.Module | None:
    """Rank 0: the trained model as one unsharded module with LoRA merged in; None on the other ranks.

    Collective under a sharding engine (every process must call it). ``wrapped`` is what
    ``accelerator.prepare`` returned, ``model`` the unwrapped module, ``frame`` its :func:`skeleton`
    (rank 0, sharding engines only). Without sharding, rank 0's ``model`` is merged in place.
    """
    if is_sharded(accelerator):
        full = accelerator.get_state_dict(wrapped)  # full tensors on rank 0 only
        if not accelerator.is_main_process:
            return None
        assert frame is not None, "gathered_model: a sharded run needs the skeleton taken before prepare"
        frame.load_state_dict(full, strict=True, assign=True)
        model = frame
    elif not accelerator.is_main_process:
        return None
    merged = merge_lora(model)
    if hasattr(merged, "tie_weights"):  # load_state_dict(assign=True) gives tied weights separate tensors
        merged.tie_weights()
    return merged.eval()


def default_save(tokenizer: Any) -> SaveFn:
    """Save as ``adamoe.hf.save`` does for converted models (``save_pretrained`` otherwise), tokenizer beside."""

    def save(model: nn.Module, path: Path) -> None:
        from adamoe.hf.convert import is_converted
        from adamoe.hf.io import save as save_converted

        if is_converted(model):
            save_converted(model, path)
        else:
            model.save_pretrained(path, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)

    return save


def write_folder(path: Path, model: nn.Module, save_fn: SaveFn) -> Path:
    """``save_fn`` into ``.tmp-<name>`` next to ``path``, then renamed to ``path`` (an older one replaced)."""
    tmp, old = path.parent / f".tmp-{path.name}", path.parent / f".old-{path.name}"
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_fn(model, tmp)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def save_final(
    accelerator: Accelerator,
    wrapped: nn.Module,
    model: nn.Module,
    *,
    frame: nn.Module | None,
    path: Path,
    save_fn: SaveFn,
) -> nn.Module | None:
    """Gather, merge and write the final model folder on rank 0 (collective; all ranks return together).

    Returns rank 0's merged model (on the CPU after a sharded run), None elsewhere.
    """
    merged = gathered_model(accelerator, wrapped, model, frame)
    if merged is not None:
        write_folder(path, merged, save_fn)
    accelerator.wait_for_everyone()
    return merged
