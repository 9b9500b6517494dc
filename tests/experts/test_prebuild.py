"""``python -m adamoe.experts.prebuild`` (run by scripts/setup.sh): the runtime's build, at set-up time.

The compile is replaced by a stand-in that records the folder it was asked to build in and writes the
library there, so these tests take no compiler and no time; what they check is that set-up builds where
`kernels.load` looks, through `kernels.load` itself, and that a failed build is one line and exit 0.
"""

from __future__ import annotations

import pytest

from adamoe.experts import kernels, prebuild, swiglu_act


def _clear_load_caches() -> None:
    """Forget every extension `kernels` has loaded in this process (its per-process caches)."""
    for obj in list(vars(kernels).values()):
        if callable(getattr(obj, "cache_clear", None)):
            obj.cache_clear()


@pytest.fixture
def fake_build(monkeypatch, tmp_path):
    """ADAMOE_CACHE in tmp_path, a fixed compiler and CPU, and `kernels._compile` replaced by a recorder."""
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ADAMOE_NO_KERNELS", raising=False)
    monkeypatch.setattr(kernels, "compiler_id", lambda: "/usr/bin/c++ 12.2.0")
    monkeypatch.setattr(kernels, "cpu_features", lambda: "avx2 fma sse2")
    calls: list = []
    state = {"error": None}

    def compile_(build, **_variant):
        calls.append(build)
        if state["error"] is not None:
            raise state["error"]
        (build / f"{kernels.NAME}.so").write_bytes(b"\x7fELF")
        return "module"

    monkeypatch.setattr(kernels, "_compile", compile_)
    _clear_load_caches()
    yield calls, state
    _clear_load_caches()  # the stand-in module must not outlive the test


def test_prebuild_builds_where_the_runtime_loads(fake_build, tmp_path, capsys):
    calls, _ = fake_build
    expected = tmp_path / "cache" / "kernels" / kernels.build_dir().name
    act = tmp_path / "cache" / "kernels" / kernels.extension_dir(swiglu_act.act_extension()).name
    assert prebuild.main([]) == 0
    out, err = capsys.readouterr()
    assert calls == [expected, act] and (expected / f"{kernels.NAME}.so").is_file()
    assert out == f"decode kernel: {expected}\nactivation kernel: {act}\n" and "building" in err
    _clear_load_caches()  # a later process: the runtime's load finds the same folder, compiles nothing new
    assert kernels.load() == "module" and calls == [expected, act, expected]
    assert "building" not in capsys.readouterr().err


def test_a_failed_build_is_one_line_and_exit_0(fake_build, capsys):
    calls, state = fake_build
    state["error"] = RuntimeError("Error building extension 'adamoe_decode':\nc++: error: x\nninja: failed")
    assert prebuild.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("notice: decode kernel not built")
    assert lines[1].startswith("notice: activation kernel not built")
    assert all("Error building extension" in line and "ninja" not in line for line in lines)
    _clear_load_caches()
    assert prebuild.main(["--strict"]) == 1 and len(calls) == 4


def test_the_opt_out_variable_is_named_and_nothing_is_compiled(fake_build, monkeypatch, capsys):
    calls, _ = fake_build
    monkeypatch.setenv("ADAMOE_NO_KERNELS", "1")
    assert prebuild.main([]) == 0 and calls == []
    assert "ADAMOE_NO_KERNELS is set" in capsys.readouterr().out
