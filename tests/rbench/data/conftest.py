"""A faked hub for the loader tests: nothing here reaches the network."""

import datasets
import pytest


@pytest.fixture
def fake_hub(monkeypatch):
    """Replace datasets.load_dataset by a table keyed on (path, config, split); records calls."""
    tables: dict = {}
    calls: list = []

    def load_dataset(path, name=None, *, split):
        calls.append((path, name, split))
        if (path, name, split) not in tables:
            raise ConnectionError(f"Couldn't reach '{path}' on the Hub (OfflineModeIsEnabled)\nsecond line")
        return datasets.Dataset.from_list(tables[(path, name, split)])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return tables, calls
