"""Suite-wide fixtures: offline hub access and a fixed seed before every test."""

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
