"""The malloc tuning: applied once (idempotent), a no-op where it does not apply, and on glibc it turns a
64 MiB block freed and re-allocated from 16384 fresh page faults per round (mmap/munmap) into ~0,
without changing what the process computes. The real-process checks run in a child: the tuning is per
process and would otherwise stay on in the test session."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from adamoe.bench import malloc

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


class FakeLibc:
    """Records mallopt calls; refuses the parameters in ``refuse``."""

    def __init__(self, refuse: tuple[int, ...] = ()) -> None:
        self.calls: list[tuple[int, int]] = []
        self.refuse = refuse
        self.mallopt = self._mallopt

    def _mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 0 if param in self.refuse else 1


@pytest.fixture
def fresh(monkeypatch):
    """A process that has not been tuned yet, with a fake C library."""
    monkeypatch.setattr(malloc, "_STATE", None)
    monkeypatch.delenv(malloc.ENV_OFF, raising=False)
    fake = FakeLibc()
    monkeypatch.setattr(malloc, "_glibc", lambda: fake)
    return fake


def test_applies_each_setting_once_and_is_idempotent(fresh):
    first = malloc.tune_malloc()
    # <malloc.h>: M_MMAP_THRESHOLD -3 = 1 GiB, M_TRIM_THRESHOLD -1 = 2^31 - 1, M_ARENA_MAX -8 = 1
    assert fresh.calls == [(-3, 1 << 30), (-1, 2**31 - 1), (-8, 1)]
    assert first == {
        "applied": True,
        "settings": {"M_MMAP_THRESHOLD": 1 << 30, "M_TRIM_THRESHOLD": 2**31 - 1, "M_ARENA_MAX": 1},
    }
    assert malloc.tune_malloc() is first and malloc.tuning_state() is first
    assert len(fresh.calls) == 3  # the second call did not touch the allocator again


def test_env_switch_and_non_glibc_are_no_ops(fresh, monkeypatch):
    monkeypatch.setenv(malloc.ENV_OFF, "0")
    assert malloc.tune_malloc() == {"applied": False, "reason": "ADAMOE_MALLOC_TUNING=0"}
    assert fresh.calls == []
    monkeypatch.setattr(malloc, "_STATE", None)
    monkeypatch.delenv(malloc.ENV_OFF)
    monkeypatch.setattr(malloc, "_glibc", lambda: None)
    assert malloc.tune_malloc() == {"applied": False, "reason": "not glibc"}


def test_a_refused_setting_is_reported(monkeypatch):
    monkeypatch.setattr(malloc, "_STATE", None)
    monkeypatch.delenv(malloc.ENV_OFF, raising=False)
    monkeypatch.setattr(malloc, "_glibc", lambda: FakeLibc(refuse=(-8,)))
    state = malloc.tune_malloc()
    assert state["applied"] is False and state["reason"] == "glibc refused M_ARENA_MAX"
    assert set(state["settings"]) == {"M_MMAP_THRESHOLD", "M_TRIM_THRESHOLD"}


CHILD = r"""
import ctypes, json, resource
import torch
from adamoe.bench.malloc import tune_malloc

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 64 << 20

def rounds(n):
    out = []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        p = libc.malloc(SIZE)
        ctypes.memset(p, 7, SIZE)
        ok = ctypes.string_at(p + SIZE - 3, 3) == b"\x07\x07\x07"
        libc.free(p)
        out.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, ok))
    return out

x = torch.arange(1 << 22, dtype=torch.float64)
before_sum = float((x * x).sum())
default = rounds(4)
first, again = tune_malloc(), tune_malloc()
tuned = rounds(4)
after_sum = float((torch.arange(1 << 22, dtype=torch.float64) ** 2).sum())
print(json.dumps({"default": default, "tuned": tuned, "same": first is again, "state": first,
                  "sums": [before_sum, after_sum]}))
"""


def _thp_always() -> bool:
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return path.exists() and "[always]" in path.read_text()


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_tuned_process_reuses_a_freed_64mib_block_and_computes_the_same():
    if _thp_always():
        pytest.skip("transparent huge pages 'always': a fault maps 2 MiB, page counts differ")
    env = {k: v for k, v in os.environ.items() if k != malloc.ENV_OFF}
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")  # 16384 with 4 KiB pages
    assert all(ok for _, ok in out["default"] + out["tuned"])
    # default glibc: 64 MiB is above the dynamic mmap threshold's 32 MiB cap -> mmap, touch, munmap each time
    # (a few pages less can be counted: the kernel may map some of a fresh mapping without a fault)
    assert all(faults >= 0.95 * pages for faults, _ in out["default"])
    # tuned: the first round grows the heap, later rounds re-use it
    assert out["tuned"][0][0] >= 0.95 * pages and all(faults < 64 for faults, _ in out["tuned"][1:])
    assert out["same"] and out["state"]["applied"]
    n = 1 << 22  # sum of k^2 for k < n, exact in float64 at this size
    assert out["sums"] == [(n - 1) * n * (2 * n - 1) / 6] * 2
