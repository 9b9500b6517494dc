"""Fixtures shared by the evaluation tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from a second thread, and a busy 2-core box makes spinning threads slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mixtral() -> tuple[Any, Any, dict[str, Any]]:
    """One tiny random Mixtral (MoE) shared by a test module."""
    from adamoe.hf.models import resolve_model

    return resolve_model("tiny-mixtral", seed=0)
