"""Derived random streams: reproducible per (seed, purpose), unrelated across purposes and seeds; global
streams left untouched by draws inside ``isolated_rng``."""

import random

import numpy as np
import pytest
import torch

from adamoe.utils.seeding import derive_generator, derive_seed, isolated_rng


def test_same_seed_and_purpose_reproduce_and_purposes_differ():
    a = torch.randn(1000, generator=derive_generator(0, "upcycle.router"))
    b = torch.randn(1000, generator=derive_generator(0, "upcycle.router"))
    c = torch.randn(1000, generator=derive_generator(0, "convert.gate2"))
    d = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    for other in (c, d):
        assert abs(float(torch.corrcoef(torch.stack([a, other]))[0, 1])) < 0.1
    assert derive_seed(0, "x") != derive_seed(1, "x")
    assert 0 <= derive_seed(123, "x") < 2**63
    with pytest.raises(ValueError, match="purpose"):
        derive_seed(0, "")


def _draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def test_isolated_rng_leaves_the_global_streams_where_they_were_even_on_an_error():
    _seed_all(5)
    expected = [_draws() for _ in range(2)]  # the reference: nothing drawn in between
    _seed_all(5)
    first = _draws()
    with isolated_rng():
        inside = _draws()
    with pytest.raises(RuntimeError), isolated_rng():
        _draws()
        raise RuntimeError("eval failed")
    assert [first, _draws()] == expected
    assert inside == expected[1]  # the draws inside did advance (the same stream), then were undone
