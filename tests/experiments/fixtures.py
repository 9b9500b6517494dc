"""Fixtures of the reproduction tests: a tiny fake BIG-bench sdist and one torch thread.

The sdist (the layout of tests/data/test_bigbench.py) holds two MC1 tasks of 80 items each (split 16
train / 8 validation / 56 test by the loader's rule); ``fake_bigbench`` points ``ADAMOE_CACHE`` at it.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/"
FAKE_TASKS = ["bigbench:capitals", "bigbench:parity"]


def _task(name: str, items: list[tuple[str, dict[str, int]]]) -> dict:
    return {
        "name": name,
        "description": f"fake {name}",
        "keywords": ["common sense"],
        "examples": [{"input": q, "target_scores": scores} for q, scores in items],
    }


def _files() -> dict[str, dict]:
    capitals = [(f"City {i} is in country", {f"c{i}": 1, f"d{i}": 0, f"e{i}": 0}) for i in range(80)]
    parity = [(f"Is {i} even?", {"yes": int(i % 2 == 0), "no": int(i % 2 == 1)}) for i in range(80)]
    return {"capitals/task.json": _task("capitals", capitals), "parity/task.json": _task("parity", parity)}


def write_fake_bigbench(cache: Path) -> Path:
    """Write the fake sdist under ``cache/bigbench/`` and return its path."""
    path = cache / "bigbench" / "bigbench-1.0.0.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in _files().items():
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(ROOT + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_bigbench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """ADAMOE_CACHE -> a tmp folder with the fake sdist; returns the task specs.

    ``ADAMOE_NO_KERNELS``: the C++ expert kernel would otherwise be compiled into the empty cache (~1 min).
    """
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ADAMOE_NO_KERNELS", "1")
    write_fake_bigbench(tmp_path / "cache")
    return list(FAKE_TASKS)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread for the test (the machine is shared), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
