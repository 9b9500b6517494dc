"""Run Python code as a user without adamoe would: in a subprocess where ``import adamoe`` fails.

:data:`PREAMBLE` drops every sys.path entry holding an ``adamoe`` package (the editable install's .pth
adds src/) and any adamoe import finder, then proves ``import adamoe`` fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PREAMBLE = """
import sys
from pathlib import Path
sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "adamoe").exists()]
sys.meta_path[:] = [f for f in sys.meta_path if "adamoe" not in repr(f).lower()]
try:
    import adamoe
    raise SystemExit("adamoe is importable")
except ImportError:
    pass
"""


def run_without_adamoe(code: str, *args: str, cwd: Path) -> str:
    """stdout of ``python -c PREAMBLE + code args...`` run in ``cwd``; fails the test on a non-zero exit.
    stdin is closed, so a transformers prompt (trust_remote_code) answers itself with an error."""
    out = subprocess.run(
        [sys.executable, "-c", PREAMBLE + code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout
