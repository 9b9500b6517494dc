"""scripts/setup.sh's optional kernel step, run with a fake ``python`` that records its arguments.

The fake python does no work (no pip, no download, no compile); it exits 1 for the kernel step when told
to, so the test checks the shell logic: the step runs the prebuild entry point, a failure there is one
line of notice and set-up still exits 0, and ``--data-only`` skips it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"
FAKE = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$*" in *adamoe.experts.prebuild*) exit "$FAKE_PREBUILD_RC";; esac
exit 0
"""


def _setup(tmp_path: Path, *args: str, prebuild_rc: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "python").write_text(FAKE)
    (bindir / "python").chmod(0o755)
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "FAKE_LOG": str(log)}
    env["FAKE_PREBUILD_RC"] = str(prebuild_rc)
    proc = subprocess.run(["bash", str(SETUP), *args], env=env, capture_output=True, text=True, timeout=60)
    return proc, log.read_text().splitlines()


@pytest.mark.parametrize("rc", [0, 1])
def test_the_kernel_step_runs_last_and_never_fails_setup(tmp_path, rc):
    proc, calls = _setup(tmp_path, prebuild_rc=rc)
    assert proc.returncode == 0, proc.stderr
    assert calls[-1] == "-m adamoe.experts.prebuild"
    assert calls[-2] == "-m adamoe.vendor_data fetch"
    notices = [line for line in (proc.stdout + proc.stderr).splitlines() if "notice" in line]
    assert notices == (
        [] if rc == 0 else ["notice: decode kernel not prebuilt; adamoe builds it on first use"]
    )


def test_data_only_skips_the_kernel_step(tmp_path):
    proc, calls = _setup(tmp_path, "--data-only", prebuild_rc=1)
    assert proc.returncode == 0 and calls == ["-m adamoe.vendor_data fetch"]
