"""Per-example score cache: an append-only JSONL file so a killed evaluation resumes where it stopped.

Each line is one scored item keyed by a hash of (model fingerprint, task, example id, prompt). Lines
are flushed and fsync'ed as they are written; a line cut short by a crash is dropped (and trimmed
from the file) on the next open, so it is recomputed rather than misread.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

__all__ = ["ScoreCache", "model_fingerprint", "routing_settings"]

_ROUTING_ATTRS = ("num_experts", "num_null", "top_k", "null_bias")
"""A module carrying any of these is routing machinery: all its scalar settings enter the fingerprint."""


def routing_settings(model: Any) -> dict[str, dict[str, Any]]:
    """Every scalar setting of every router and routing source: module name -> {attribute: value}.

    Routing settings change the scores without touching a weight: the compute dial's ``null_bias``, the
    number of nulls m, k, the normalisation option, the null type, the scoring function. Rather than
    listing them (and missing the next one), every public int/float/bool/str attribute of a module that
    has one of :data:`_ROUTING_ATTRS` is taken, plus its class name.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules() if hasattr(model, "named_modules") else ():
        if not name or not any(hasattr(module, a) for a in _ROUTING_ATTRS):
            continue  # the root model's settings are its config, hashed already
        named = {
            a: getattr(module, a, None) for a in (*_ROUTING_ATTRS, "normalize", "null_type")
        }  # properties too
        scalars = {
            k: v
            for k, v in {**vars(module), **named}.items()
            if not k.startswith("_") and k != "training" and isinstance(v, (bool, int, float, str))
        }
        out[name] = {"class": type(module).__name__, **dict(sorted(scalars.items()))}
    return out


def model_fingerprint(model: Any, *, extra: str = "") -> str:
    """A cheap identity for a model's weights, config and routing settings.

    Hashing every byte of a large model costs seconds; instead each tensor contributes its name,
    shape, dtype and two float64 reductions plus a strided sample, which changes under any
    fine-tuning step or weight swap that matters in practice. Routing settings that live outside the
    weights (:func:`routing_settings`) are hashed too, so a cache never serves scores or routing
    statistics recorded under another null bias, m, k or normalisation.
    """
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_json_string"):
        h.update(config.to_json_string(use_diff=False).encode())
    h.update(type(model).__name__.encode())
    h.update(extra.encode())
    h.update(json.dumps(routing_settings(model), sort_keys=True, default=repr).encode())
    with torch.no_grad():
        for name, tensor in list(model.state_dict().items()):
            flat = tensor.detach().reshape(-1)
            h.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
            if flat.numel() == 0 or not (
                flat.is_floating_point() or flat.dtype in (torch.int64, torch.int32)
            ):
                continue
            sample = flat[:: max(1, flat.numel() // 64)][:64].to(torch.float64)
            total = flat.sum(dtype=torch.float64).reshape(1)
            mass = flat.abs().sum(dtype=torch.float64).reshape(1)
            stats = torch.cat([total, mass, sample])
            h.update(stats.cpu().numpy().tobytes())
    return h.hexdigest()[:32]


class ScoreCache:
    """Append-only JSONL cache of per-example scores for one model fingerprint."""

    def __init__(self, path: str | os.PathLike[str], *, model_fingerprint: str):
        if not model_fingerprint:
            raise ValueError("model_fingerprint: expected a non-empty string")
        self.path = Path(path)
        self.fingerprint = model_fingerprint
        self._entries: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        keep = len(data)
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1  # a write cut short by a kill: drop the partial line
        for line in data[:keep].splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # damaged line: its item is simply scored again
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                self._entries[entry["key"]] = entry
        if keep != len(data):
            with self.path.open("r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())

    def key(self, *, task: str, example_id: str, prompt: str) -> str:
        """Cache key of one prompt: a hash of the model fingerprint, task, example id and prompt text."""
        payload = json.dumps([self.fingerprint, task, example_id, prompt], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached entry under ``key``, or None."""
        return self._entries.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Append one entry durably (prefer :meth:`put_many` for a batch)."""
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Append entries durably (one flush + fsync per call, so callers batch their writes)."""
        lines = []
        for key, value in items:
            entry = {**value, "key": key}
            lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
            self._entries[key] = entry
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
