"""The package's entry points: every one the package docstring names resolves; importing the package is cheap."""

import importlib
import re
import subprocess
import sys

import adamoe.rbench as rbench


def test_every_entry_point_named_in_the_package_docstring_resolves() -> None:
    named = re.findall(r"`(adamoe\.rbench\.[\w.]+)\.([A-Z]\w*|[a-z_]+)`", rbench.__doc__ or "")
    assert len(named) >= 7
    for module, name in named:
        assert getattr(importlib.import_module(module), name) is not None, f"{module}.{name}"


def test_importing_the_package_is_cheap() -> None:
    code = "import sys, adamoe.rbench; print('torch' in sys.modules, 'adamoe.rbench.runner' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
