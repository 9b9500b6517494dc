"""Independent random streams per purpose: never one seed reused for two different draws.

Two components seeded with the same user ``seed`` (say the upcycler drawing router rows and the converter
drawing null-expert jitter) must not produce the same numbers: with identical generators the nulls'
noise equals the upcycled router rows scaled, twins tie, and the initial load collapses. Each purpose
therefore gets its own generator, seeded by a hash of (seed, purpose).
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_generator", "derive_seed"]


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for ``purpose``: stable across runs and platforms, unrelated for different purposes."""
    if not purpose:
        raise ValueError("purpose: expected a non-empty name for the random stream, got ''")
    digest = hashlib.sha256(f"adamoe:{int(seed)}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def derive_generator(seed: int, purpose: str, *, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` for one purpose (see :func:`derive_seed`)."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, purpose))
