"""Reading a stored pool day on SQLite and PostgreSQL: its numbers, an empty day."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa

from allocator_dagster.forecast import attach_forecast
from allocator_dagster.sources.records import FORECAST_COLUMNS, POOL_COLUMNS
from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.storage.pool_reads import (
    load_pool_day,
    load_pool_rejections,
    load_pool_values,
)
from allocator_dagster.storage.pool_writes import replace_pool_day

DAY = date(2026, 3, 10)


def test_pool_values_are_the_numbers_of_the_stored_day(
    engine: sa.Engine, sample: SampleUniverse
) -> None:
    frame, rejections = sample.universe_for(DAY)
    history = sample.history(DAY - timedelta(days=30), DAY - timedelta(days=1))
    frame = attach_forecast(frame, history, DAY)
    replace_pool_day(engine, DAY, frame, rejections, source="sample")
    values = load_pool_values(engine, DAY)
    numbers = ["tvlUsd", "apy", "apyBase", "apyReward", "apyMean30d", *FORECAST_COLUMNS]
    pd.testing.assert_frame_equal(values, load_pool_day(engine, DAY)[["pool", *numbers]])
    assert load_pool_values(engine, date(2020, 1, 1)).empty


def test_missing_day_loads_empty(engine: sa.Engine) -> None:
    frame = load_pool_day(engine, date(2020, 1, 1))
    assert frame.empty and list(frame.columns) == list(POOL_COLUMNS + FORECAST_COLUMNS)
    assert load_pool_rejections(engine, date(2020, 1, 1)) == []
