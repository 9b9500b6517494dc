"""A context in which any read-back to the host fails: what would be a device sync on CUDA, caught on CPU.

Every tensor operation passes through ``__torch_function__`` under a ``TorchFunctionMode``. Refused are the
operations that on CUDA must wait for the device to learn a value or a size: ``item``, ``tolist``,
``cpu``, ``numpy``, conversion to a Python bool / int / float / index, ``nonzero`` / ``argwhere`` /
one-argument ``where``, ``bincount``, ``unique``, ``masked_select``, and indexing with a boolean tensor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

SYNCING = frozenset(
    {
        "item",
        "tolist",
        "cpu",
        "numpy",
        "__bool__",
        "__int__",
        "__float__",
        "__index__",
        "nonzero",
        "argwhere",
        "bincount",
        "unique",
        "masked_select",
    }
)
INDEXING = frozenset({"__getitem__", "__setitem__", "index_put_", "index_put"})


def _has_bool_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dtype == torch.bool and value.ndim > 0
    if isinstance(value, (tuple, list)):
        return any(_has_bool_tensor(v) for v in value)
    return False


class NoHostSync(TorchFunctionMode):
    """``with NoHostSync(): ...`` raises AssertionError at the first operation that reads the device."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        syncing = name in SYNCING
        syncing |= name in INDEXING and len(args) > 1 and _has_bool_tensor(args[1])
        syncing |= name == "where" and len(args) + len(kwargs) == 1
        if syncing:
            raise AssertionError(f"host read-back: {name}")
        return func(*args, **kwargs)
