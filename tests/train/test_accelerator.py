"""What the run says about ``fsdp_cpu_ram_efficient_loading`` (the 2-process FSDP run that shows it once,
on rank 0: tests/train/test_loop_subprocess.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from accelerate.utils import DistributedType

from adamoe.train.accelerator import RAM_EFFICIENT_LOADING_NOTE, ram_efficient_loading_note


def stub(kind: DistributedType, processes: int, flag: bool | None) -> SimpleNamespace:
    plugin = None if flag is None else SimpleNamespace(cpu_ram_efficient_loading=flag)
    return SimpleNamespace(
        distributed_type=kind, num_processes=processes, state=SimpleNamespace(fsdp_plugin=plugin)
    )


@pytest.mark.parametrize(
    ("kind", "processes", "flag", "said"),
    [
        (DistributedType.FSDP, 8, True, True),
        (DistributedType.FSDP, 8, False, False),
        (DistributedType.FSDP, 1, True, False),  # nothing is sharded, nothing broadcast
        (DistributedType.MULTI_GPU, 8, None, False),  # DDP: no FSDP plugin
    ],
)
def test_the_note_is_given_exactly_for_multi_process_fsdp_with_the_flag(kind, processes, flag, said):
    assert (ram_efficient_loading_note(stub(kind, processes, flag)) is not None) == said


def test_the_note_says_what_happens_to_host_ram():
    assert "every process has already loaded the whole model into host RAM" in RAM_EFFICIENT_LOADING_NOTE
    assert "broadcast rank 0's weights" in RAM_EFFICIENT_LOADING_NOTE
