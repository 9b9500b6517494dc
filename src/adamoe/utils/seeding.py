"""Independent random streams per purpose: never one seed reused for two different draws.

Two components seeded with the same user ``seed`` (say the upcycler drawing router rows and the converter
drawing null-expert jitter) must not produce the same numbers: with identical generators the nulls'
noise equals the upcycled router rows scaled, twins tie, and the initial load collapses. Each purpose
therefore gets its own generator, seeded by a hash of (seed, purpose).

:func:`isolated_rng` is the other half: code that must draw from the *global* generators (an eval
callback in the middle of training) runs inside it and leaves them as it found them.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["derive_generator", "derive_seed", "isolated_rng"]


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for ``purpose``: stable across runs and platforms, unrelated for different purposes."""
    if not purpose:
        raise ValueError("purpose: expected a non-empty name for the random stream, got ''")
    digest = hashlib.sha256(f"adamoe:{int(seed)}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def derive_generator(seed: int, purpose: str, *, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` for one purpose (see :func:`derive_seed`)."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, purpose))


@contextlib.contextmanager
def isolated_rng() -> Iterator[None]:
    """Python's ``random``, NumPy's global and torch's CPU generator are restored on exit (also on an
    error), so draws inside cannot shift a training run's stream. CUDA generators are not forked
    (``fork_rng(devices=[])``)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
