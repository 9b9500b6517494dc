"""The training run's ``Accelerator``: device, mixed precision, trackers, and FSDP on CPU.

Accelerate decides the distributed engine from the environment ``accelerate launch`` sets (DDP, FSDP,
DeepSpeed; see ``examples/accelerate/*.yaml``), so the loop itself never names one. One gap is filled
here: Accelerate turns FSDP on only for GPU-type process groups, so ``ACCELERATE_USE_FSDP=true`` on a
CPU (gloo) run silently becomes DDP. :func:`enable_cpu_fsdp` switches such a run to FSDP with the
plugin read from the same ``FSDP_*`` variables, which is what lets the FSDP path be tested on CPU.

``fsdp_cpu_ram_efficient_loading`` (examples/accelerate/fsdp.yaml, FSDP2): only rank 0 needs the
weights. Accelerate's ``prepare`` moves every process's model to the meta device, shards it there and
broadcasts rank 0's full state dict into the shards, so ranks > 0 may build their model on the meta
device in the first place (:func:`weights_on_main_only` around loading, conversion and LoRA; the process
group must exist first: :func:`start_distributed`). Two gaps of that path are filled by
:func:`prepare_model`: buffers (Accelerate copies the non-persistent ones, e.g. rotary ``inv_freq``,
from each process's own model, and a meta buffer cannot be copied) are broadcast from rank 0 first, and
the optimizer is re-bound by parameter name afterwards (Accelerate maps old to new parameters by
``data_ptr()``, which is 0 for every meta tensor, so every slot would get the same parameter). A model
loaded on every rank still works; :func:`build_accelerator` then warns that the flag saved no host RAM.

The process group's life: :func:`start_distributed` forms it (a verb calls it before loading, so rank 0
can choose and :func:`broadcast_from_main` the run directory); ``train`` leaves it alive for the final
save, :func:`release` dropping only the accelerator's references; :func:`end_distributed` ends it last.
"""

from __future__ import annotations

import contextlib
import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from accelerate import Accelerator, FullyShardedDataParallelPlugin
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import (
    DistributedDataParallelKwargs,
    DistributedType,
    broadcast_object_list,
    gather_object,
)
from accelerate.utils.fsdp_utils import fsdp2_canonicalize_names
from torch import nn

from adamoe.train.config import TrainConfig
from adamoe.train.runlog import check_tracker, tracker_config
from adamoe.utils.device import accelerator_kwargs, check_placement

TRACKER_PROJECT = "adamoe-train"


def build_accelerator(config: TrainConfig, out_dir: Path | None) -> Accelerator:
    """The run's Accelerator: ``config.device`` (Accelerate picks unless cpu is forced), ``config.dtype``
    as mixed precision, trackers started when ``log_with`` is set (logs under ``out_dir``)."""
    check_tracker(config.log_with)
    # Accelerate keeps one process-wide state; a second train() call in the same process (a sweep, the
    # demo's two runs) may ask for another precision. The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(
        **accelerator_kwargs(config.device, config.dtype),
        gradient_accumulation_steps=config.grad_accum,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        log_with=config.log_with,
        project_dir=str(out_dir) if out_dir is not None else None,
    )
    check_placement(config.device, accelerator.device)
    enable_cpu_fsdp(accelerator)
    if config.log_with is not None:
        accelerator.init_trackers(TRACKER_PROJECT, config=tracker_config(config.to_dict()))
    return accelerator


def fsdp_requested() -> bool:
    """Whether ``accelerate launch`` (or the environment) asked for FSDP."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").strip().lower() in ("1", "true", "yes")


def enable_cpu_fsdp(accelerator: Accelerator) -> bool:
    """Switch a multi-process CPU run that asked for FSDP from Accelerate's DDP fallback to FSDP.

    Sets the engine on both the process state and the accelerator state (Accelerate re-copies the
    former into the latter), with a plugin built from the ``FSDP_*`` variables. Returns whether it did.
    """
    if not fsdp_requested() or accelerator.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin()
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    PartialState().distributed_type = DistributedType.FSDP
    accelerator.state.distributed_type = DistributedType.FSDP
    accelerator.state.fsdp_plugin = plugin
    return True


RAM_EFFICIENT_LOADING_NOTE = (
    "fsdp_cpu_ram_efficient_loading: process(es) {ranks} loaded the whole model into host RAM, though only "
    "rank 0 needs the weights; build the model inside adamoe.train.accelerator.weights_on_main_only() after "
    "start_distributed() (adamoe train does) to leave it on the meta device there (docs/gpu.md)."
)


def ram_efficient_loading() -> bool:
    """Whether the launcher asked for FSDP with ``fsdp_cpu_ram_efficient_loading`` (the ``FSDP_*`` variables
    ``accelerate launch`` exports; the same two transformers' ``is_fsdp_enabled`` reads)."""
    flag = os.environ.get("FSDP_CPU_RAM_EFFICIENT_LOADING", "false").strip().lower() in ("1", "true", "yes")
    return fsdp_requested() and flag


def builds_on_meta() -> bool:
    """Whether this process should build its model on the meta device: a process group of more than one
    process exists (:func:`start_distributed`), FSDP with cpu-RAM-efficient loading is asked for, and this
    is not rank 0 (the only rank whose weights Accelerate broadcasts)."""
    group = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    return bool(group and ram_efficient_loading() and dist.get_rank() != 0)


@contextlib.contextmanager
def weights_on_main_only() -> Iterator[bool]:
    """Build the model inside this block: on ranks > 0 of a cpu-RAM-efficient FSDP run every tensor created
    here is on the meta device (no host RAM, no weight read); elsewhere nothing changes. Yields whether
    this process builds on meta. Conversion (:func:`adamoe.hf.convert.convert`) and LoRA work on meta
    models; a folder is built from its config there (``from_pretrained`` refuses a meta context), e.g.
    ``adamoe.hf.io.load(path, meta=True)``. The values arrive at :func:`prepare_model`, from rank 0."""
    if not builds_on_meta():
        yield False
        return
    with torch.device("meta"):
        yield True


def _fill_buffers_from_main(model: nn.Module, device: torch.device) -> None:
    """Broadcast every buffer of ``model`` from rank 0 (collective, same module tree on every rank);
    ranks > 0 replace theirs, which may be on the meta device (received on ``device``: NCCL needs CUDA
    tensors; kept on the CPU)."""
    main = dist.get_rank() == 0
    for name, buffer in list(model.named_buffers()):
        value = (
            buffer.detach().to(device)
            if main
            else torch.empty(buffer.shape, dtype=buffer.dtype, device=device)
        )
        dist.broadcast(value, src=0)
        if not main:
            owner, _, local = name.rpartition(".")
            setattr(
                model.get_submodule(owner), local, value.to(buffer.device if not buffer.is_meta else "cpu")
            )


def prepare_model(
    accelerator: Accelerator, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """``accelerator.prepare(model, optimizer)``, also for models built on the meta device on ranks > 0.

    Under FSDP2 with cpu-RAM-efficient loading, rank 0's buffers are broadcast first and the optimizer's
    parameters are re-bound by name afterwards (see the module docstring); a meta model anywhere else is
    refused. Collective under FSDP. Returns what ``prepare`` returns.
    """
    on_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    efficient = accelerator.distributed_type == DistributedType.FSDP and accelerator.num_processes > 1
    efficient = efficient and bool(getattr(plugin, "cpu_ram_efficient_loading", False))
    if on_meta and not (efficient and getattr(plugin, "fsdp_version", 1) == 2):
        raise ValueError(
            f"model: {on_meta[0]} is on the meta device on process {accelerator.process_index}; only FSDP2 "
            "with fsdp_cpu_ram_efficient_loading fills it from rank 0 (accelerate launch --config_file "
            "examples/accelerate/fsdp.yaml), else load the weights on every process"
        )
    if not efficient:
        return accelerator.prepare(model, optimizer)
    loaded = [i for i, meta in enumerate(gather_object([bool(on_meta)])) if i > 0 and not meta]
    if loaded and accelerator.is_main_process:
        warnings.warn(RAM_EFFICIENT_LOADING_NOTE.format(ranks=", ".join(map(str, loaded))), stacklevel=2)
    _fill_buffers_from_main(model, accelerator.device)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = [[names[id(p)] for p in group["params"]] for group in optimizer.param_groups]
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    # Accelerate re-binds by data_ptr(), 0 for every meta tensor: bind each slot to its parameter by name.
    current = fsdp2_canonicalize_names(dict(accelerator.unwrap_model(wrapped).named_parameters()))
    for group, group_names in zip(optimizer.param_groups, groups):
        group["params"] = [current[n] for n in group_names]
    return wrapped, optimizer


def start_distributed(device: str) -> PartialState:
    """Form the process group now, when launched by ``torchrun``/``accelerate launch`` (a no-op alone).

    A verb calls it before loading the model so that rank 0 can choose the run directory and broadcast
    it (:func:`broadcast_from_main`); the group is the one the run's Accelerator then uses. Gloo on a CPU
    run (``device`` cpu, or auto without a GPU), Accelerate's choice (NCCL on CUDA) otherwise.
    """
    return PartialState(cpu=accelerator_kwargs(device, "fp32")["cpu"])


def broadcast_from_main(value: Any) -> Any:
    """``value`` as the main process has it, on every process (collective; the value itself alone)."""
    if PartialState().num_processes == 1:
        return value
    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def release(accelerator: Accelerator) -> None:
    """Finish the trackers and drop the accelerator's references to the prepared model and optimizer.

    The process group is *not* destroyed here (``Accelerator.end_training`` would): the final save and
    the caller's own collectives (rank 0 choosing a directory, a barrier before exit) still need it. The
    DDP wrapper goes now, though: its C++ reducer holds the gloo group, and if it is the last holder when
    the group dies, the group's destructor joins gloo's worker threads while holding the GIL and one of
    them waits for the GIL to free a finished all-reduce's tensor -- the hang seen at exit on rank 0.
    """
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.free_memory()
    gc.collect()


def end_distributed() -> None:
    """End a multi-process run: wait for every process, then destroy the process group (no-op alone).

    Call it once at the very end of a script that trained under ``torchrun``/``accelerate launch``, after
    :func:`adamoe.train.train` returned (it released its DDP wrapper, see :func:`release`).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
