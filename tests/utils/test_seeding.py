"""Derived random streams: reproducible per (seed, purpose), unrelated across purposes and seeds."""

import pytest
import torch

from adamoe.utils.seeding import derive_generator, derive_seed


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
