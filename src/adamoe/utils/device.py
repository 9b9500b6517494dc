"""Device and precision choices shared by every verb: ``--device auto|cpu|cuda|mps``, ``--dtype fp32|bf16|fp16``.

Why one place: training hands the choice to Accelerate (``cpu=True`` only when cpu is forced; bf16/fp16 as
autocast mixed precision over fp32 master weights), while evaluation and inference load the model in the
dtype itself. Both must refuse a device that is not there with the same one-line message and the CLI fix,
instead of a CUDA traceback deep inside torch.
"""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("fp32", "bf16", "fp16")
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


def _available(device: str) -> bool:
    if device == "cuda":
        return torch.cuda.is_available()
    if device == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return device in ("cpu", "auto")


def _probe(device: str) -> str:
    return "torch.cuda.is_available()" if device == "cuda" else "torch.backends.mps.is_available()"


def check_device(device: str, dtype: str = "fp32") -> None:
    """Raise a one-line ValueError when ``device``/``dtype`` name something this machine cannot run.

    fp16 is refused on CPU (no fp16 autocast there; bf16 is the CPU half precision).
    """
    if device not in DEVICES:
        raise ValueError(f"device: expected one of {', '.join(DEVICES)}, got {device!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    if not _available(device):
        raise ValueError(f"device: {device} requested but {_probe(device)} is False; use --device cpu")
    if dtype == "fp16" and resolve_device(device).type == "cpu":
        raise ValueError(
            "dtype: fp16 needs a GPU (cuda or mps), this run is on cpu; use --dtype bf16 or fp32"
        )


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device ``device`` stands for; ``auto`` picks as Accelerate does (cuda, then mps, then cpu)."""
    if device == "auto":
        for candidate in ("cuda", "mps"):
            if _available(candidate):
                return torch.device(candidate)
        return torch.device("cpu")
    if not _available(device):
        raise ValueError(f"device: {device} requested but {_probe(device)} is False; use --device cpu")
    return torch.device(device)


def torch_dtype(dtype: str) -> torch.dtype:
    """``"bf16"`` -> ``torch.bfloat16`` (the model dtype for evaluation and inference)."""
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    return TORCH_DTYPES[dtype]


def accelerator_kwargs(device: str, dtype: str) -> dict[str, object]:
    """Keyword arguments of ``accelerate.Accelerator`` for a training run on ``device`` in ``dtype``.

    ``cuda``/``mps`` leave the device to Accelerate, and so does ``auto`` when a GPU is there; ``cpu``
    forces it, and so does ``auto`` without a GPU: Accelerate forms a gloo process group under
    ``torchrun``/``accelerate launch`` only when told cpu, else each process would train alone.
    """
    check_device(device, dtype)
    cpu = device == "cpu" or (device == "auto" and resolve_device("auto").type == "cpu")
    return {"cpu": cpu, "mixed_precision": MIXED_PRECISION[dtype]}


def check_placement(requested: str, actual: torch.device) -> None:
    """After Accelerate chose ``actual``: an explicit ``cuda``/``mps`` request must have got that device."""
    if requested in ("cuda", "mps") and actual.type != requested:
        raise ValueError(
            f"device: {requested} requested but Accelerate chose {actual.type}; use --device auto"
        )
