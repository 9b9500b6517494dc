"""The package's entry points: every exported name resolves, lazily (importing it loads no torch)."""

import subprocess
import sys

import adamoe.rbench as rbench


def test_every_exported_name_resolves_to_its_defining_module() -> None:
    for name in rbench.__all__:
        assert getattr(rbench, name) is not None, name
    assert rbench.RBenchConfig.__module__ == "adamoe.rbench.config"
    assert rbench.write_report.__module__ == "adamoe.rbench.report.render"


def test_importing_the_package_is_cheap() -> None:
    code = "import sys, adamoe.rbench; print('torch' in sys.modules, 'adamoe.rbench.runner' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
