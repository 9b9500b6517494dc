"""adamoe.paths: the cache root's precedence and folders created on demand."""

from __future__ import annotations

import pytest

from adamoe import paths


def test_cache_dir_prefers_adamoe_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("ADAMOE_CACHE")
    assert paths.cache_dir() == tmp_path / "xdg" / "adamoe"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "adamoe"


def test_folders_are_created_on_demand(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "c"))
    assert paths.cache_root() == tmp_path / "c" and not (tmp_path / "c").exists()
    expected = {"kernels": paths.kernels_dir, "models": paths.models_dir, "data": paths.data_dir}
    expected["vendor"] = paths.vendor_dir
    for name, fn in expected.items():
        assert fn() == tmp_path / "c" / name and (tmp_path / "c" / name).is_dir()
    assert paths.subdir("data/offline") == tmp_path / "c" / "data" / "offline"


@pytest.mark.parametrize("bad", ["", "/abs", "../out", "a/../../b"])
def test_subdir_stays_inside_the_cache(monkeypatch, tmp_path, bad):
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="name"):
        paths.subdir(bad)


def test_paths_imports_nothing_heavy():
    import subprocess
    import sys

    code = "import sys, adamoe.paths; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
