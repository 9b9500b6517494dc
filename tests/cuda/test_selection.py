"""``pytest -m cuda`` selects the GPU smoke suite and, without a GPU, skips it (a run here, in a subprocess)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, `pytest -m cuda` runs the suite itself")
def test_the_cuda_marker_selects_the_smoke_suite_and_skips_it_without_a_gpu() -> None:
    argv = [sys.executable, "-m", "pytest", "-m", "cuda", "--strict-markers", "-p", "no:cacheprovider"]
    out = subprocess.run(
        [*argv, "-rs", "-o", "addopts=", "tests/cuda", "tests/train/test_device.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    summary = out.strip().splitlines()[-1]  # "==== 5 skipped, 8 deselected in 3.2s ===="
    # 3 smoke tests + the 2 CUDA tests of tests/train/test_device.py, nothing else run
    assert re.search(r"= 5 skipped, \d+ deselected in ", summary), out[-2000:]
    assert "SKIPPED [3] tests/cuda/test_smoke.py: needs a CUDA GPU" in out
