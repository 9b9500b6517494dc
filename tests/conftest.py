"""Suite-wide fixtures: offline hub access and a fixed seed before every test; ``cuda`` tests skipped
where there is no CUDA GPU."""

import os

import pytest
import torch

from tests.offline_fixture import no_offline_wheel, offline_wheel, offline_wheel_dir  # noqa: F401  (suite-wide)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def seed() -> int:
    """Every test starts from the same RNG state, so random inputs (and failures) reproduce."""
    torch.manual_seed(0)
    return 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` (the GPU smoke suite, tests/cuda; ``pytest -m cuda``) need a CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
