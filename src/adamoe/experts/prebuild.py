"""``python -m adamoe.experts.prebuild``: compile the C++ kernels (decode; the one-pass SwiGLU activation)
now, at set-up, not on first use.

Why: the first process that needs `adamoe.experts.kernels` compiles it, and on a fresh machine that
process was the user's first run (54 s of a fresh ``adamoe rbench --quick``, issue 18). So
``scripts/setup.sh`` runs this once, as pip builds a package's C extension at install. It goes through
`adamoe.experts.kernels.load`, the function every caller uses, so the binary lands in the folder the
runtime looks in (``kernels.build_dir()``, under ``$ADAMOE_CACHE``, else ``$XDG_CACHE_HOME/adamoe``, else
``~/.cache/adamoe``) and a binary already there is only located, not rebuilt.

Optional, like the data wheels of `adamoe.vendor_data`: without a compiler the runtime runs torch ops, so
a kernel that cannot be built is one line of notice (the first line of the reason, not the compiler's log)
and exit status 0; ``--strict`` makes it 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from adamoe.experts import kernels, swiglu_act

__all__ = ["main"]


def _reason(caught: list[warnings.WarningMessage]) -> str:
    """Why `kernels.load` gave None: the opt-out variable, else the first line of its warning."""
    if os.environ.get("ADAMOE_NO_KERNELS"):
        return "ADAMOE_NO_KERNELS is set"
    text = str(caught[-1].message) if caught else "no reason given"
    return (text.strip().splitlines() or ["no reason given"])[0][:200]


def main(argv: list[str] | None = None) -> int:
    """Build (or locate) each kernel; print its folder, or one line of notice per kernel that cannot be built.

    Exit status 0 either way, unless ``--strict`` is given and there is no kernel.
    """
    parser = argparse.ArgumentParser(prog="python -m adamoe.experts.prebuild", description=main.__doc__)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the kernel cannot be built")
    args = parser.parse_args(argv)
    missing = 0
    for label, ext, slower in (
        ("decode kernel", kernels.decode_extension(), "a slower decode"),
        ("activation kernel", swiglu_act.act_extension(), "a slower training step"),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = kernels.load_extension(ext)
        if module is not None:
            print(f"{label}: {kernels.extension_dir(ext)}")
            continue
        missing += 1
        print(f"notice: {label} not built ({_reason(caught)}); adamoe runs torch ops instead ({slower})")
    return 1 if args.strict and missing else 0


if __name__ == "__main__":
    sys.exit(main())
