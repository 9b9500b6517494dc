"""Helpers shared by the CLI verbs: typed verb configs, the offline switch, task loading, saving a model.

A verb's settings come from ``--config FILE.yaml``, then ``--set key.sub=value`` overrides, then the
verb's own flags, and are built into the verb's typed :class:`~adamoe.utils.config.Config` before
anything is loaded or written, so a typo (``--set train.epoch=2``) is one line listing the valid keys.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from adamoe.data.examples import MCExample
from adamoe.runs import load_config
from adamoe.utils.config import Config, require

C = TypeVar("C", bound=Config)
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def set_offline() -> None:
    """No hub access for the rest of this process (what ``--offline`` / ``offline: true`` does).

    Sets the variables huggingface_hub, datasets and transformers read, and the constants they already
    read if imported, so the switch works whenever it is thrown.
    """
    for var in OFFLINE_VARS:
        os.environ[var] = "1"
    if "huggingface_hub" in sys.modules:
        import huggingface_hub.constants

        huggingface_hub.constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True


def is_offline() -> bool:
    """Whether hub access is switched off (``--offline`` or ``HF_HUB_OFFLINE=1`` in the environment)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def read_settings(args: argparse.Namespace, *, lists: Iterable[str] = (), **flags: Any) -> dict[str, Any]:
    """The verb's settings mapping: YAML, ``--set`` overrides, then the flags given (``None`` = not given).

    A top-level ``offline: true`` is the config form of ``--offline``. Keys in ``lists`` also accept a
    comma string (``--set tasks=a,b``).
    """
    settings = load_config(args.config, args.set)
    offline = settings.pop("offline", False)
    require(isinstance(offline, bool), f"offline: expected true or false, got {offline!r}")
    if offline or getattr(args, "offline", False):
        set_offline()
    settings.update({key: value for key, value in flags.items() if value is not None})
    for key in lists:
        if isinstance(settings.get(key), str):
            settings[key] = as_list(settings[key])
    return settings


def add_runtime_arguments(parser: argparse.ArgumentParser, *, trackers: bool = True) -> None:
    """``--device``, ``--dtype`` (and ``--log-with``): where a verb runs, shared by the verbs that run a model.

    Defaults are None ("not given") so a config file's values stand unless a flag overrides them; the
    config defaults (auto / fp32 / no tracker) keep earlier runs unchanged.
    """
    from adamoe.utils.device import DEVICES, DTYPES

    parser.add_argument(
        "--device", choices=DEVICES, help="auto (Accelerate's choice: cuda, mps, cpu) or force one"
    )
    parser.add_argument(
        "--dtype", choices=DTYPES, help="fp32; bf16/fp16 = mixed precision in training, model dtype otherwise"
    )
    if trackers:
        from adamoe.train.config import TRACKERS

        parser.add_argument("--log-with", choices=TRACKERS, help="also log to this tracker (JSONL is kept)")


def runtime_flags(args: argparse.Namespace) -> dict[str, str]:
    """The ``--device``/``--dtype``/``--log-with`` values given on the command line (absent ones left out)."""
    given = {key: getattr(args, key, None) for key in ("device", "dtype", "log_with")}
    return {key: value for key, value in given.items() if value is not None}


def model_placement(args: argparse.Namespace) -> dict[str, Any]:
    """``spec.load`` keyword arguments for evaluation/inference verbs: ``--device`` (auto = cuda, mps or
    cpu, whichever is there) and ``--dtype`` as the model dtype. Neither flag: the auto device and the
    checkpoint's own dtype (a GPU machine must not evaluate on the CPU just because no flag was given)."""
    from adamoe.utils.device import check_device, resolve_device, torch_dtype

    device, dtype = getattr(args, "device", None), getattr(args, "dtype", None)
    if device is None and dtype is None:
        return {"device": resolve_device("auto")}
    check_device(device or "auto", dtype or "fp32")
    return {"device": resolve_device(device or "auto"), "dtype": torch_dtype(dtype or "fp32")}


def verb_config(cls: type[C], args: argparse.Namespace, *, lists: Iterable[str] = (), **flags: Any) -> C:
    """``cls`` built from :func:`read_settings`; keys are named bare in errors (the prompt names the verb)."""
    return cls.from_mapping(read_settings(args, lists=lists, **flags), where="")


def load_tasks(
    names: list[str], *, split: str | None, limit: int | None, seed: int
) -> dict[str, list[MCExample]]:
    """Load each task by name (generated, hub) or ``name=path`` for a local file.

    A hub set that cannot be loaded is one line saying how to fix it on the command line.
    """
    from adamoe.data.loaders import DataSourceError, load_task

    tasks = {}
    for item in names:
        name, _, source = item.partition("=")
        try:
            tasks[name] = list(load_task(name, split=split, limit=limit, source=source or None, seed=seed))
        except DataSourceError as exc:
            raise DataSourceError(_cli_hint(str(exc), name, from_file=bool(source))) from None
        require(bool(tasks[name]), f"task {name!r}: no examples loaded")
    return tasks


def _cli_hint(message: str, name: str, *, from_file: bool) -> str:
    """A loader's message with its Python-call advice replaced by the command-line fix."""
    head = message.split("; fetch the offline benchmarks once")[0]
    if from_file or head == message:
        return message
    switch = (
        "hub access is off (--offline or HF_HUB_OFFLINE=1): drop --offline and unset HF_HUB_OFFLINE to "
        "download it, or"
        if is_offline()
        else "check the network, or"
    )
    return (
        f"{head}; fetch the offline benchmarks once: python -m adamoe.vendor_data fetch; {switch} pass a "
        f"local copy: --task {name}=rows.jsonl (hub schema; .csv/.parquet too)"
    )


def save_model(model: Any, tokenizer: Any, path: Path) -> Path:
    """Save converted and plain models alike (safetensors) with the tokenizer beside them."""
    from adamoe.hf.convert import is_converted

    if is_converted(model):
        from adamoe.hf.io import save

        save(model, path)
    else:
        model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def as_list(value: Any) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` (or None) -> a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]
