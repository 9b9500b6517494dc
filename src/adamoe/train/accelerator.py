"""The training run's ``Accelerator``: device, mixed precision, trackers, and FSDP on CPU.

Accelerate decides the distributed engine from the environment ``accelerate launch`` sets (DDP, FSDP,
DeepSpeed; see ``examples/accelerate/*.yaml``), so the loop itself never names one. One gap is filled
here: Accelerate turns FSDP on only for GPU-type process groups, so ``ACCELERATE_USE_FSDP=true`` on a
CPU (gloo) run silently becomes DDP. :func:`enable_cpu_fsdp` switches such a run to FSDP with the
plugin read from the same ``FSDP_*`` variables, which is what lets the FSDP path be tested on CPU.

``fsdp_cpu_ram_efficient_loading`` (examples/accelerate/fsdp.yaml) is not what its name promises here:
the model is loaded by every process before the run's Accelerator exists, so each process holds the
whole model in host RAM; the flag only makes Accelerate's ``prepare`` move every process's copy to the
meta device and broadcast rank 0's weights into the shards. :func:`build_accelerator` says so once.

The process group's life: :func:`start_distributed` forms it (a verb calls it before loading, so rank 0
can choose and :func:`broadcast_from_main` the run directory); ``train`` leaves it alive for the final
save, :func:`release` dropping only the accelerator's references; :func:`end_distributed` ends it last.
"""

from __future__ import annotations

import gc
import os
import warnings
from pathlib import Path
from typing import Any

import torch.distributed as dist
from accelerate import Accelerator, FullyShardedDataParallelPlugin
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedDataParallelKwargs, DistributedType, broadcast_object_list

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
    note = ram_efficient_loading_note(accelerator)
    if note is not None and accelerator.is_main_process:
        warnings.warn(note, stacklevel=2)
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
    "fsdp_cpu_ram_efficient_loading: every process has already loaded the whole model into host RAM "
    "(adamoe loads it on each process before sharding; transformers 5.23 does not skip the read on "
    "ranks > 0), so plan processes x model size of host RAM per machine. The flag only makes prepare() "
    "move each copy to the meta device and broadcast rank 0's weights into the shards (docs/gpu.md)."
)


def ram_efficient_loading_note(accelerator: Accelerator) -> str | None:
    """:data:`RAM_EFFICIENT_LOADING_NOTE` for a multi-process FSDP run with the flag set, else None."""
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    flagged = bool(getattr(plugin, "cpu_ram_efficient_loading", False))
    fsdp = accelerator.distributed_type == DistributedType.FSDP and accelerator.num_processes > 1
    return RAM_EFFICIENT_LOADING_NOTE if flagged and fsdp else None


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
