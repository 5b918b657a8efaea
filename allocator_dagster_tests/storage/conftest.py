"""The storage tests' shared fixtures."""

from __future__ import annotations

import pytest

from allocator_dagster.sources.sample import SampleUniverse


@pytest.fixture(scope="module")
def sample() -> SampleUniverse:
    """A small generated universe (300 pools), built once per test module."""
    return SampleUniverse(n_pools=300)
