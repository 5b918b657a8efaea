"""Writing a pool day on SQLite and PostgreSQL: one transaction per day, exact round trips."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from allocator_dagster.forecast import attach_forecast
from allocator_dagster.sources.records import (
    FORECAST_COLUMNS,
    NO_LIMITS,
    POOL_COLUMNS,
    Rejection,
    validate_pool_records,
)
from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.storage.pool_days import stored_pool_days
from allocator_dagster.storage.pool_reads import load_pool_day, load_pool_rejections
from allocator_dagster.storage.pool_writes import replace_pool_day, upsert_pool_rows
from allocator_dagster.storage.schema import pool_daily_metrics, pool_rejections

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "defillama" / "pools.json"
DAY = date(2026, 3, 10)
STAMP = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def count(engine: sa.Engine, table: sa.Table, day: date) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table).where(table.c.metric_date == day)
        return conn.execute(query).scalar_one()


def test_round_trip_is_exact(engine: sa.Engine, sample: SampleUniverse) -> None:
    frame, rejections = sample.universe_for(DAY)
    history = sample.history(DAY - timedelta(days=30), DAY - timedelta(days=1))
    frame = attach_forecast(frame, history, DAY)
    written = replace_pool_day(engine, DAY, frame, rejections, source="sample", ingested_at=STAMP)
    assert written == len(frame)
    back = load_pool_day(engine, DAY)
    assert list(back.columns) == list(POOL_COLUMNS + FORECAST_COLUMNS)
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))
    assert load_pool_rejections(engine, DAY) == rejections
    assert stored_pool_days(engine) == [DAY]


def test_real_records_with_unicode_and_nulls_round_trip(engine: sa.Engine) -> None:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))["data"]
    frame, rejections = validate_pool_records(data, source="defillama")
    replace_pool_day(engine, DAY, frame, rejections, source="defillama")
    back = load_pool_day(engine, DAY)
    pd.testing.assert_frame_equal(back[list(POOL_COLUMNS)], frame)
    assert back[list(FORECAST_COLUMNS)].isna().all().all()
    assert any(not s.isascii() for s in back["symbol"])


def test_replacing_a_day_never_duplicates(engine: sa.Engine, sample: SampleUniverse) -> None:
    frame, rejections = sample.universe_for(DAY)
    other, _ = sample.universe_for(DAY + timedelta(days=1))
    replace_pool_day(engine, DAY + timedelta(days=1), other, [], source="sample")
    for _ in range(3):
        replace_pool_day(engine, DAY, frame, rejections, source="sample")
    assert count(engine, pool_daily_metrics, DAY) == len(frame)
    assert count(engine, pool_rejections, DAY) == len(rejections)
    smaller = frame.iloc[:10]
    replace_pool_day(engine, DAY, smaller, [], source="sample")
    assert load_pool_day(engine, DAY)["pool"].tolist() == smaller["pool"].tolist()
    assert count(engine, pool_rejections, DAY) == 0
    # The other day was not touched.
    assert count(engine, pool_daily_metrics, DAY + timedelta(days=1)) == len(other)


def test_a_failed_write_keeps_the_previous_rows(engine: sa.Engine, sample: SampleUniverse) -> None:
    frame, rejections = sample.universe_for(DAY)
    replace_pool_day(engine, DAY, frame, rejections, source="sample")
    broken = pd.concat([frame.iloc[:5], frame.iloc[:1]], ignore_index=True)  # duplicate pool id
    with pytest.raises(sa.exc.IntegrityError):
        replace_pool_day(engine, DAY, broken, [], source="sample")
    assert count(engine, pool_daily_metrics, DAY) == len(frame)
    assert load_pool_rejections(engine, DAY) == rejections
    bad_rejections = [Rejection(1, "a", "x"), Rejection(1, "b", "y")]  # duplicate row number
    with pytest.raises(sa.exc.IntegrityError):
        replace_pool_day(engine, DAY, frame.iloc[:3], bad_rejections, source="sample")
    assert count(engine, pool_daily_metrics, DAY) == len(frame)


def test_invalid_tvl_is_refused_before_writing(engine: sa.Engine, sample: SampleUniverse) -> None:
    frame, _ = sample.universe_for(DAY)
    broken = frame.copy()
    broken.loc[3, "tvlUsd"] = np.nan
    with pytest.raises(ValueError, match="tvlUsd must be finite"):
        replace_pool_day(engine, DAY, broken, [], source="sample")
    assert count(engine, pool_daily_metrics, DAY) == 0


def test_upsert_replaces_only_the_given_pools(engine: sa.Engine, sample: SampleUniverse) -> None:
    frame, rejections = sample.universe_for(DAY)
    replace_pool_day(engine, DAY, frame, rejections, source="sample")
    changed = frame.iloc[:4].copy()
    changed["tvlUsd"] = 1.0
    assert upsert_pool_rows(engine, DAY, changed, source="defillama-chart") == 4
    upsert_pool_rows(engine, DAY, changed, source="defillama-chart")
    back = load_pool_day(engine, DAY)
    assert len(back) == len(frame)
    assert (back.set_index("pool").loc[changed["pool"], "tvlUsd"] == 1.0).all()
    assert len(load_pool_rejections(engine, DAY)) == len(rejections)


def test_awkward_text_round_trips_exactly(engine: sa.Engine) -> None:
    """Quotes, commas, newlines, backslashes, non-ASCII, an empty string beside a null and
    extreme floats are stored as they are (PostgreSQL writes the day with COPY, as CSV)."""
    records = [
        {
            "pool": "p-quote",
            "chain": "Ethereum",
            "project": 'say "hi", ok',
            "symbol": "A,B\nC",
            "tvlUsd": 1e6,
            "apyBase": 0.1 + 0.2,
            "poolMeta": "",
            "underlyingTokens": ['0x"a"', "b,c", "\\N"],
        },
        {
            "pool": "p-null",
            "chain": "Solana",
            "project": "\\N",
            "symbol": "ÉTH·ß",
            "tvlUsd": 5e-324,
            "apyBase": 1.7976931348623157e308,
            "apyReward": -0.0,
            "poolMeta": None,
            "ilRisk": "",
            "stablecoin": True,
        },
    ]
    frame, rejected = validate_pool_records(records, source="defillama", limits=NO_LIMITS)
    assert not rejected
    frame = frame.assign(apy_forecast=[1 / 3, math.nan], tvl_forecast=[math.nan, 2.5])
    frame = frame.reindex(columns=list(POOL_COLUMNS + FORECAST_COLUMNS))
    replace_pool_day(engine, DAY, frame, [], source="defillama", ingested_at=STAMP)
    back = load_pool_day(engine, DAY)
    pd.testing.assert_frame_equal(back, frame)
    assert back["poolMeta"].tolist() == [None, ""]  # sorted by id: p-null, p-quote
    assert back["ilRisk"].tolist() == ["", None]
