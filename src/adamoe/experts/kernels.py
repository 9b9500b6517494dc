"""Small C++ kernels for the decode regime: a few token rows, bound by reading the expert weights.

At decode time each expert sees 1-4 token rows, so ``rows @ W.T`` is a matrix-vector product bound by
reading ``W``. MKL's sgemm re-reads ``W`` once per row for such skinny shapes and runs its GEMV on fewer
threads than the memory system wants. ``skinny_mm_out`` reads each weight row once, keeps it in L1 for
all rows and splits the weight rows across the intra-op threads. ``moe_decode`` goes further for a
whole MoE step at T <= `DECODE_MAX_TOKENS` tokens: routing, gate_up -> SiLU * up -> down and the
weighted sum in one call and one OpenMP parallel region (see `adamoe.experts.kernel_source`), instead
of ~10 small torch ops that each pay a fork/join. ``moe_decode_routed`` also computes the routing
itself (router GEMV, softmax, top-k, weights) in the same region, so a softmax top-k MoE layer's decode
step is one call with no torch op around it. All are compiled on first use with
``torch.utils.cpp_extension.load_inline``; without a compiler (or with ``ADAMOE_NO_KERNELS=1``)
``skinny_mm_out`` falls back to ``torch.mm`` and the MoE kernels return None (callers then take the
torch path).

The build is compiled with ``-march=native``, so a binary is only valid on CPUs with the features of the
one that built it. Its folder under ``adamoe.paths.kernels_dir()`` is therefore named by a hash of
everything the binary depends on (`build_key`): compiler path and version, flags, source, torch version
and the CPU's feature flags; a home directory shared between different machines keeps one build per
CPU kind. Builds hold an exclusive file lock (two processes never compile into one folder at once), run
the ``ninja`` of the current Python environment (two ninjas alternating on one folder rebuild each
other's work), and say so on stderr once, since the first compile takes 30-60 s.

``load(prefetch=False)`` builds a second extension from the same source with ``-DADAMOE_NO_PREFETCH``
(the software prefetch of `adamoe.experts.kernel_source` compiled out), under its own module name and
build key; ``moe_decode(..., prefetch=False)`` runs it. It exists for the same-run A/B of the prefetch in
``benchmarks/profile_bounds.py --sections decode``; everything else uses the default build.

Other extensions are built by the same code: an :class:`Extension` (module name, source, functions, flags)
goes to :func:`load_extension`, which keys, locks, compiles and caches it as above; the one-pass SwiGLU
activation kernels of `adamoe.experts.swiglu_act` are the second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import torch

from adamoe.experts.kernel_source import SOURCE
from adamoe.paths import kernels_dir

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; builds are then serialised only by torch's own baton
    fcntl = None  # type: ignore[assignment]

SKINNY_MAX_ROWS = 4
DECODE_MAX_TOKENS = 8  # the fused MoE decode kernel serves calls with at most this many tokens
FLAGS = ("-O3", "-march=native", "-fopenmp", "-ffast-math")
NAME = "adamoe_decode"
DECODE_FUNCTIONS = ("skinny_mm_out", "moe_decode", "moe_decode_routed")
NO_PREFETCH = "-DADAMOE_NO_PREFETCH"  # compiles kernel_source's software prefetch out (the A/B variant)
_LIB_SUFFIX = ".pyd" if os.name == "nt" else ".so"

T = TypeVar("T")


def cpu_features(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's instruction-set features as one sorted, space-separated string.

    Linux lists them on the ``flags`` (x86) or ``Features`` (ARM) line of /proc/cpuinfo; elsewhere the
    machine and processor names from `platform` stand in.
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip().lower() in ("flags", "features"):
                    return " ".join(sorted(set(value.split())))
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}".strip()


def compiler_id() -> str:
    """Resolved path and first ``--version`` line of the compiler torch will use (``$CXX``, else c++)."""
    name = os.environ.get("CXX", "c++")
    path = shutil.which(name) or name
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, check=False)
        first = (out.stdout or out.stderr).strip().splitlines()
        version = first[0] if first else ""
    except (OSError, subprocess.SubprocessError):
        version = "unknown"
    return f"{os.path.realpath(path)} {version}"


def build_key(*, compiler: str, flags: tuple[str, ...], source: str, torch_version: str, cpu: str) -> str:
    """16 hex digits naming one binary: any change in an input gives a different build folder."""
    parts = (compiler, " ".join(flags), source, torch_version, cpu)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def flags(*, prefetch: bool = True) -> tuple[str, ...]:
    """The compiler flags of the default build, or of the variant with the software prefetch compiled out."""
    return FLAGS if prefetch else (*FLAGS, NO_PREFETCH)


def module_name(*, prefetch: bool = True) -> str:
    """The extension's module name: each variant its own, so both can be loaded in one process."""
    return NAME if prefetch else f"{NAME}_no_prefetch"


class Extension(NamedTuple):
    """One C++ extension built by this module: its module name, source text, exported functions and flags
    (all but the function list go into the build key)."""

    name: str
    source: str
    functions: tuple[str, ...]
    flags: tuple[str, ...]


def decode_extension(*, prefetch: bool = True) -> Extension:
    """The decode kernels of `adamoe.experts.kernel_source` (``prefetch=False``: the A/B variant)."""
    return Extension(module_name(prefetch=prefetch), SOURCE, DECODE_FUNCTIONS, flags(prefetch=prefetch))


def extension_dir(ext: Extension) -> Path:
    """The build folder of `ext` for this machine's compiler, torch and CPU (not created)."""
    key = build_key(
        compiler=compiler_id(),
        flags=ext.flags,
        source=ext.source,
        torch_version=torch.__version__,
        cpu=cpu_features(),
    )
    return kernels_dir() / f"{ext.name}-torch{torch.__version__.replace('+', '_')}-{key}"


def build_dir(*, prefetch: bool = True) -> Path:
    """The decode kernels' build folder for this machine's compiler, flags, source, torch and CPU."""
    return extension_dir(decode_extension(prefetch=prefetch))


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_path` (blocks while another process or thread holds it)."""
    if fcntl is None:
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def env_ninja_dir() -> str | None:
    """Folder of the current Python environment's ``ninja`` (the pip package's), or None if it has none."""
    try:
        import ninja

        folder = getattr(ninja, "BIN_DIR", None)
    except ImportError:
        folder = None
    for candidate in (folder, sysconfig.get_path("scripts")):
        if candidate and shutil.which("ninja", path=candidate):
            return str(candidate)
    return None


@contextlib.contextmanager
def _env_ninja_first() -> Iterator[None]:
    """Put the environment's ninja first on PATH, which is where torch's cpp_extension looks it up."""
    folder = env_ninja_dir()
    old = os.environ.get("PATH", "")
    if folder is not None:
        os.environ["PATH"] = folder + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


def build_once(build: Path, load: Callable[[Path], T], *, name: str = NAME) -> T:
    """``load(build)`` (which compiles `name` into `build` when needed) under an exclusive build lock.

    The lock file sits beside the folder. Under the lock, a ``lock`` baton left in the folder by a
    crashed torch build is removed (torch would wait on it forever), and one line goes to stderr when
    the binary does not exist yet, i.e. a real compile is about to start.
    """
    build.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(build.with_name(build.name + ".lock")):
        build.mkdir(exist_ok=True)
        (build / "lock").unlink(missing_ok=True)
        if not (build / f"{name}{_LIB_SUFFIX}").exists():
            print(
                f"adamoe: building the {name} kernels (once, ~30-60 s) in {build}",
                file=sys.stderr,
                flush=True,
            )
        with _env_ninja_first():
            return load(build)


def _compile(build: Path, *, ext: Extension) -> Any:
    from torch.utils.cpp_extension import load_inline

    return load_inline(
        ext.name,
        cpp_sources=ext.source,
        functions=list(ext.functions),
        extra_cflags=list(ext.flags),
        build_directory=str(build),
        verbose=False,
    )


@functools.cache
def load_extension(ext: Extension) -> Any | None:
    """`ext` compiled (built on first use, once per process), or None without a toolchain or with
    ``ADAMOE_NO_KERNELS`` (callers then take their torch path)."""
    if os.environ.get("ADAMOE_NO_KERNELS"):
        return None
    try:
        return build_once(extension_dir(ext), functools.partial(_compile, ext=ext), name=ext.name)
    except Exception as err:  # no compiler / ninja: the torch path is always correct
        warnings.warn(f"adamoe: {ext.name} kernels unavailable, using torch ops ({err})", stacklevel=3)
        return None


def load(*, prefetch: bool = True) -> Any | None:
    """The compiled decode extension (see `load_extension`). ``prefetch=False``: the A/B variant with the
    software prefetch compiled out."""
    return load_extension(decode_extension(prefetch=prefetch))


def _module() -> Any | None:
    """The default build, which every wrapper below calls (tests replace this to take the torch paths)."""
    return load()


def _variant(prefetch: bool) -> Any | None:
    """The default build (through `_module`) or the no-prefetch one."""
    return _module() if prefetch else load(prefetch=False)


def available(*, prefetch: bool = True) -> bool:
    return _variant(prefetch) is not None


def skinny_mm_out(rows: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> None:
    """``out = rows @ weight.T`` for a few rows (``out`` contiguous, e.g. a row slice of a buffer)."""
    mod = _module()
    if mod is None or rows.dtype != torch.float32 or not weight.is_contiguous() or rows.device.type != "cpu":
        torch.mm(rows, weight.t(), out=out)
        return
    mod.skinny_mm_out(rows.contiguous(), weight, out)


def _decode_applies(
    hidden: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, *more: torch.Tensor
) -> bool:
    """Whether the fused MoE kernels serve this call: inference (no autograd through ``hidden``, the
    weights or ``more``) on CPU at 1..`DECODE_MAX_TOKENS` tokens, contiguous fp32 or bf16 expert weights."""
    tensors = (hidden, gate_up, down, *more)
    return (
        not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
        and hidden.dim() == 2
        and hidden.shape[0] <= DECODE_MAX_TOKENS
        and hidden.device.type == "cpu"
        and gate_up.dtype in (torch.float32, torch.bfloat16)
        and down.dtype == gate_up.dtype
        and gate_up.is_contiguous()
        and down.is_contiguous()
    )


def moe_decode(
    hidden: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor,
    num_experts: int,
    *,
    prefetch: bool = True,
) -> tuple[torch.Tensor, int] | None:
    """A whole routed SwiGLU step at decode in one fused kernel call, or None when it does not apply.

    (T, H) ``hidden`` and (T, k) routing ``indices``/``weights`` (slots outside ``0..num_experts-1``,
    i.e. nulls and empty ``-1`` slots, are dropped) through ``gate_up`` (E, 2I, H) and ``down``
    (E, H, I) -> ((T, H) sum over slots of weight * expert output in ``hidden``'s dtype, number of true
    slots). It applies for inference on CPU at T <= `DECODE_MAX_TOKENS` with contiguous fp32 or bf16
    weights (fp32 accumulation) and a built kernel: it has no backward, and at larger T the
    per-expert BLAS GEMMs of ``grouped_swiglu`` win. ``prefetch=False`` runs the A/B build (`load`).
    """
    mod = _variant(prefetch) if _decode_applies(hidden, gate_up, down, weights) else None
    if mod is None:
        return None
    out, slots = mod.moe_decode(
        hidden.contiguous().float(),
        gate_up,
        down,
        indices.contiguous().long(),
        weights.contiguous().float(),
        num_experts,
    )
    return out.to(hidden.dtype), int(slots)


class RoutedDecode(NamedTuple):
    """What :func:`moe_decode_routed` returns: the (T, H) output in ``hidden``'s dtype, the routing it
    chose ((T, k) int64 ``indices``, (T, k) fp32 ``weights``, (T, E+m) fp32 ``probs`` and ``logits``,
    as a :class:`~adamoe.routing.base.Routing` holds them) and ``slots``, the number of true-expert slots."""

    out: torch.Tensor
    indices: torch.Tensor
    weights: torch.Tensor
    probs: torch.Tensor
    logits: torch.Tensor
    slots: int


def moe_decode_routed(
    hidden: torch.Tensor,
    router_weight: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    *,
    num_experts: int,
    top_k: int,
    normalize: int,
    identity_nulls: bool,
    null_bias: float,
) -> RoutedDecode | None:
    """Softmax top-k routing AND the routed SwiGLU step of :func:`moe_decode` in one kernel call, or None.

    ``router_weight`` (E+m, H) scores E true and m null experts: logits ``x @ W.T`` in fp32 with
    ``null_bias`` added to the null columns, softmax, the ``top_k`` most probable (among equal
    probabilities the lower index first; ``torch.topk`` leaves that order unspecified), combination
    weights as :func:`adamoe.routing.base.normalize_weights` (``normalize`` 0/1/2 from the picks'
    logits; ``identity_nulls``: null picks contribute ``weight * x``). The same function as
    ``TopKRouter`` + ``dispatch`` to fp32 round-off, except that a near-tie at the k-th place can flip a
    pick (the logits are summed in another order than BLAS). None where :func:`moe_decode` would be None, when
    the router weight needs a gradient, or when the rule does not fit (``top_k`` > E+m, E > E+m).
    """
    total = router_weight.shape[0]
    fits = 1 <= top_k <= total and num_experts <= total and normalize in (0, 1, 2)
    applies = fits and hidden.shape[0] >= 1 and _decode_applies(hidden, gate_up, down, router_weight)
    mod = _module() if applies else None
    if mod is None:
        return None
    if router_weight.dtype not in (torch.float32, torch.bfloat16):
        router_weight = router_weight.float()
    out, indices, weights, probs, logits, slots = mod.moe_decode_routed(
        hidden.contiguous().float(),
        router_weight.contiguous(),
        gate_up,
        down,
        num_experts,
        top_k,
        normalize,
        identity_nulls,
        float(null_bias),
    )
    return RoutedDecode(out.to(hidden.dtype), indices, weights, probs, logits, int(slots))
