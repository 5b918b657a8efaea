"""Pool data: DefiLlama's yields API, a generated sample in the same shape, and their validation.

Nothing here imports dagster: the assets call these functions, and so do the CLI and the tests.
`ALLOCATOR_POOL_SOURCE` chooses where a day's universe comes from: `sample` (the default, the
generated universe, no network), `history` (a recording, `ALLOCATOR_HISTORY_FILE`, see
`sources/history.py`) or `defillama` (the live `/pools` snapshot).
"""

from __future__ import annotations

import os
from datetime import date
from functools import cache

import pandas as pd

from allocator_dagster.sources.records import (
    FORECAST_COLUMNS,
    POOL_COLUMNS,
    PoolSource,
    Rejection,
    validate_pool_records,
)
from allocator_dagster.sources.sample import SampleUniverse

POOL_SOURCE_ENV = "ALLOCATOR_POOL_SOURCE"
# The sources a day's universe can be configured from (history import is not one of them).
POOL_SOURCES: tuple[str, ...] = (
    PoolSource.SAMPLE.value,
    PoolSource.HISTORY.value,
    PoolSource.DEFILLAMA.value,
)


def pool_source(value: str | None = None) -> PoolSource:
    """The configured pool source (argument, else ALLOCATOR_POOL_SOURCE, else `sample`)."""
    source = (value or os.environ.get(POOL_SOURCE_ENV) or PoolSource.SAMPLE).strip().lower()
    if source not in POOL_SOURCES:
        raise ValueError(
            f"{POOL_SOURCE_ENV}={source!r} is not a pool source; "
            f"use one of {', '.join(POOL_SOURCES)}"
        )
    return PoolSource(source)


@cache
def default_sample() -> SampleUniverse:
    """The default sample universe, shared so that its generated history is made only once."""
    return SampleUniverse()


def load_universe(
    day: date, *, source: str | None = None, base_url: str | None = None
) -> tuple[pd.DataFrame, list[Rejection], PoolSource]:
    """(universe, rejections, source name) for `day` from the configured source.

    DefiLlama only serves today's snapshot: whatever `day` is, `/pools` answers with now.
    """
    chosen = pool_source(source)
    if chosen == PoolSource.SAMPLE:
        frame, rejections = default_sample().universe_for(day)
        return frame, rejections, chosen
    if chosen == PoolSource.HISTORY:
        from allocator_dagster.sources.history import history_file, open_history

        frame, rejections = open_history(history_file()).universe_for(day)
        return frame, rejections, chosen
    from allocator_dagster.sources.defillama import DEFAULT_BASE_URL, DefiLlamaClient

    frame, rejections = DefiLlamaClient(base_url or DEFAULT_BASE_URL).pools()
    return frame, rejections, chosen


__all__ = [
    "FORECAST_COLUMNS",
    "POOL_COLUMNS",
    "POOL_SOURCES",
    "POOL_SOURCE_ENV",
    "PoolSource",
    "Rejection",
    "SampleUniverse",
    "default_sample",
    "load_universe",
    "pool_source",
    "validate_pool_records",
]
