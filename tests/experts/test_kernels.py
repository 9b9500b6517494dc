"""The skinny decode kernel against torch.mm, and its use inside the grouped SwiGLU."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import threading
import time

import pytest
import torch

from adamoe.experts import grouped_mm, kernels
from adamoe.experts.kernel_source import SOURCE

needs_kernel = pytest.mark.skipif(
    not kernels.available(), reason="no C++ toolchain to build the decode kernel"
)


@needs_kernel
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 7])
def test_skinny_matches_mm(rows):
    torch.manual_seed(rows)
    x, w = torch.randn(rows, 96), torch.randn(200, 96)
    out = torch.full((rows, 200), float("nan"))
    kernels.skinny_mm_out(x, w, out)
    torch.testing.assert_close(out, x @ w.t(), atol=1e-4, rtol=1e-5)


@needs_kernel
def test_skinny_writes_into_a_row_slice_of_a_buffer():
    x, w = torch.randn(2, 32), torch.randn(16, 32)
    buf = torch.zeros(5, 16)
    kernels.skinny_mm_out(x, w, buf[1:3])
    torch.testing.assert_close(buf[1:3], x @ w.t(), atol=1e-5, rtol=1e-5)
    assert buf[0].abs().sum() == 0 and buf[3:].abs().sum() == 0


@pytest.mark.parametrize("counts", [[1, 0, 2, 1], [3, 9, 0, 1], [0, 0, 4, 0]])
def test_grouped_swiglu_decode_path_matches_the_reference(counts, monkeypatch):
    torch.manual_seed(0)
    e, h, i = 4, 32, 24
    gate_up, down = torch.randn(e, 2 * i, h), torch.randn(e, h, i)
    rows = torch.randn(sum(counts), h)
    calls = []
    real = kernels.skinny_mm_out
    monkeypatch.setattr(kernels, "skinny_mm_out", lambda *a: (calls.append(a[0].shape[0]), real(*a)))
    with torch.no_grad():
        fast = grouped_mm.grouped_swiglu(rows, gate_up, down, counts)
    ref = grouped_mm.grouped_swiglu_reference(rows, gate_up, down, counts)
    torch.testing.assert_close(fast, ref, atol=1e-4, rtol=1e-5)
    if kernels.available():  # experts with <= SKINNY_MAX_ROWS rows take the kernel, twice each
        small = [c for c in counts if 0 < c <= kernels.SKINNY_MAX_ROWS]
        assert sorted(calls) == sorted(small * 2)


def test_fallback_without_the_kernel_is_torch_mm(monkeypatch):
    monkeypatch.setattr(kernels, "_module", lambda: None)
    x, w = torch.randn(2, 8), torch.randn(5, 8)
    out = torch.empty(2, 5)
    kernels.skinny_mm_out(x, w, out)
    torch.testing.assert_close(out, x @ w.t())


# ---------------------------------------------------------------- build cache: key, lock, message, ninja

X86 = "processor\t: 0\nflags\t\t: sse2 avx2 fma avx2\nmodel name\t: X\n\nprocessor\t: 1\nflags\t\t: sse2 avx2 fma\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd sve\nCPU part\t: 0xd0c\n"


def test_cpu_features_from_cpuinfo_and_without_it(tmp_path):
    (tmp_path / "x86").write_text(X86)
    (tmp_path / "arm").write_text(ARM)
    assert kernels.cpu_features(tmp_path / "x86") == "avx2 fma sse2"
    assert kernels.cpu_features(tmp_path / "arm") == "asimd fp sve"
    assert kernels.cpu_features(tmp_path / "missing")  # platform names stand in


def test_build_key_changes_with_every_input():
    base = dict(compiler="/usr/bin/g++ 12", flags=("-O3",), source="src", torch_version="2.13.0", cpu="avx2")
    key = kernels.build_key(**base)
    assert len(key) == 16 and kernels.build_key(**base) == key
    changed = [("compiler", "/usr/bin/clang++ 17"), ("flags", ("-O3", "-march=native")), ("source", "src2")]
    changed += [("torch_version", "2.14.0"), ("cpu", "avx2 avx512f")]
    keys = {kernels.build_key(**{**base, field: value}) for field, value in changed}
    assert key not in keys and len(keys) == len(changed)


def test_build_dir_follows_flags_and_cpu_features(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path))
    monkeypatch.setattr(kernels, "compiler_id", lambda: "/usr/bin/c++ 12.2.0")
    monkeypatch.setattr(kernels, "cpu_features", lambda: "avx2 fma sse2")
    first = kernels.build_dir()
    assert first.parent == tmp_path / "kernels" and first == kernels.build_dir()
    monkeypatch.setattr(kernels, "cpu_features", lambda: "avx2 avx512f fma sse2")
    other_cpu = kernels.build_dir()
    monkeypatch.setattr(kernels, "FLAGS", (*kernels.FLAGS, "-g"))
    other_flags = kernels.build_dir()
    assert len({first, other_cpu, other_flags}) == 3


def test_the_no_prefetch_variant_is_the_same_source_with_a_define_under_its_own_name_and_key(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path))
    monkeypatch.setattr(kernels, "compiler_id", lambda: "/usr/bin/c++ 12.2.0")
    monkeypatch.setattr(kernels, "cpu_features", lambda: "avx2 fma sse2")
    on, off = kernels.build_dir(), kernels.build_dir(prefetch=False)
    assert on.name.startswith("adamoe_decode-torch")
    assert off.name.startswith("adamoe_decode_no_prefetch-torch")
    assert on.name.rsplit("-", 1)[1] != off.name.rsplit("-", 1)[1]  # another build key
    assert kernels.flags() == kernels.FLAGS
    assert kernels.flags(prefetch=False) == (*kernels.FLAGS, "-DADAMOE_NO_PREFETCH")
    assert "#if defined(__GNUC__) && !defined(ADAMOE_NO_PREFETCH)" in SOURCE


def _prefetch_instructions(prefetch):
    name = kernels.module_name(prefetch=prefetch)
    lib = kernels.build_dir(prefetch=prefetch) / f"{name}.so"
    cmd = ["objdump", "-d", "--no-show-raw-insn", str(lib)]
    asm = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return len(re.findall(r"\sprefetch", asm))


@needs_kernel
@pytest.mark.skipif(
    platform.machine() != "x86_64" or shutil.which("objdump") is None, reason="reads x86 code with objdump"
)
def test_the_define_compiles_every_prefetch_out_of_the_binary():
    assert kernels.load(prefetch=False) is not None and kernels.load(prefetch=False) is not kernels.load()
    assert _prefetch_instructions(True) > 0 and _prefetch_instructions(False) == 0


def _fake_compile(log, started=None, hold=0.0):
    """A stand-in for load_inline: 'compiles' (writes the library) only when it is missing."""

    def load(build):
        log.append(("start", time.monotonic()))
        if started is not None:
            started.set()
        lib = build / f"{kernels.NAME}.so"
        if not lib.exists():
            time.sleep(hold)
            lib.write_bytes(b"\x7fELF")
            log.append(("built", time.monotonic()))
        log.append(("end", time.monotonic()))
        return "module"

    return load


def test_build_lock_serialises_and_the_message_prints_once(tmp_path, capsys):
    build = tmp_path / "kernels" / "k"
    log_a, log_b, started = [], [], threading.Event()
    a = threading.Thread(target=kernels.build_once, args=(build, _fake_compile(log_a, started, hold=0.4)))
    a.start()
    assert started.wait(10)
    b = threading.Thread(target=kernels.build_once, args=(build, _fake_compile(log_b)))
    b.start()
    a.join(10)
    b.join(10)
    assert [e for e, _ in log_a] == ["start", "built", "end"]
    assert [e for e, _ in log_b] == ["start", "end"]  # found the library: no second build
    assert log_b[0][1] >= log_a[-1][1]  # waited for the first build to finish
    err = capsys.readouterr().err
    assert err.count("adamoe: building the adamoe_decode kernels") == 1 and str(build) in err
    assert kernels.build_once(build, _fake_compile([])) == "module"
    assert capsys.readouterr().err == ""


def test_build_removes_a_stale_torch_baton_and_uses_the_env_ninja(tmp_path, monkeypatch):
    build = tmp_path / "k"
    build.mkdir()
    (build / "lock").write_text("")  # left by a crashed torch build: torch would wait on it forever
    bindir = tmp_path / "envbin"
    bindir.mkdir()
    (bindir / "ninja").write_text("#!/bin/sh\n")
    (bindir / "ninja").chmod(0o755)
    monkeypatch.setattr(kernels, "env_ninja_dir", lambda: str(bindir))
    path_before = os.environ["PATH"]
    seen = {}

    def load(folder):
        seen["baton"] = (folder / "lock").exists()
        seen["ninja"] = shutil.which("ninja")
        return None

    kernels.build_once(build, load)
    assert seen == {"baton": False, "ninja": str(bindir / "ninja")}
    assert os.environ["PATH"] == path_before


def test_env_ninja_is_the_python_environments():
    folder = kernels.env_ninja_dir()
    if folder is None:
        pytest.skip("no ninja in this Python environment")
    assert shutil.which("ninja", path=folder) is not None
