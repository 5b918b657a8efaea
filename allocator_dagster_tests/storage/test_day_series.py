"""The packed pool days (`pool_day_series`) on SQLite and PostgreSQL: always the day's rows, bit
for bit, written in the same transaction, and filled by migration 0007 for days stored before."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from allocator_dagster.sources.records import NO_LIMITS, Rejection, validate_pool_records
from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.storage.day_series import (
    SERIES_COLUMNS,
    DaySeries,
    load_day_series,
    pack_ids,
    unpack_floats,
    unpack_ids,
)
from allocator_dagster.storage.pool_reads import load_pool_values
from allocator_dagster.storage.pool_writes import replace_pool_day, upsert_pool_rows
from allocator_dagster.storage.schema import pool_day_series

DAY = date(2026, 3, 10)
STAMP = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
# values whose bits a text or float conversion could change: the smallest subnormal, the
# largest double, 0.1 + 0.2, minus zero (SQLite stores it as 0), and nulls
AWKWARD = [
    {"pool": "p-ü", "tvlUsd": 5e-324, "apyBase": 1.7976931348623157e308, "apyReward": -0.0},
    {"pool": 'p,"q"', "tvlUsd": 1e6, "apy": 0.1 + 0.2},
    {"pool": "P-upper", "tvlUsd": 0.0, "apy": -0.0, "apyBase": None},
    {"pool": "10", "tvlUsd": 2.5, "apy": 1e-300, "apyBase": 3.25, "apyReward": 1 / 3},
]


def awkward_frame() -> pd.DataFrame:
    records = [{"chain": "Ethereum", "project": "aave-v3", "symbol": "USDC"} | r for r in AWKWARD]
    frame, rejected = validate_pool_records(records, source="defillama", limits=NO_LIMITS)
    assert not rejected
    return frame


def packed(engine: sa.Engine, day: date) -> DaySeries | None:
    return load_day_series(engine, first=day, before=day + timedelta(days=1)).get(day)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit, any NaN equal to any NaN."""
    a, b = np.where(np.isnan(a), np.nan, a), np.where(np.isnan(b), np.nan, b)
    return a.tobytes() == b.tobytes()


def assert_packed_is_the_rows(engine: sa.Engine, day: date) -> DaySeries:
    rows = load_pool_values(engine, day)
    series = packed(engine, day)
    assert series is not None
    order = sorted(range(len(rows)), key=rows["pool"].tolist().__getitem__)
    assert list(series.pools) == [rows["pool"].tolist()[k] for k in order]
    for name in SERIES_COLUMNS:
        assert series.values[name].dtype == np.float64
        assert same_bits(series.values[name], rows[name].to_numpy()[order]), name
    return series


def test_the_packed_row_is_the_stored_rows_bit_for_bit(engine: sa.Engine) -> None:
    replace_pool_day(engine, DAY, awkward_frame(), [], source="defillama", ingested_at=STAMP)
    series = assert_packed_is_the_rows(engine, DAY)
    assert series.pools == tuple(sorted(r["pool"] for r in AWKWARD))
    by_pool = {p: k for k, p in enumerate(series.pools)}
    values = series.values
    assert values["tvlUsd"][by_pool["p-ü"]] == 5e-324
    assert values["apyBase"][by_pool["p-ü"]] == 1.7976931348623157e308
    assert values["apy"][by_pool['p,"q"']] == 0.1 + 0.2
    assert math.isnan(values["apyBase"][by_pool["P-upper"]])  # NULL is NaN
    assert math.isnan(values["apyReward"][by_pool['p,"q"']])
    # minus zero: kept where the database keeps it (PostgreSQL), 0.0 where it does not (SQLite)
    kept = engine.dialect.name == "postgresql"
    assert bool(np.signbit(values["apyReward"][by_pool["p-ü"]])) is kept


def test_packing_round_trips_and_refuses_what_it_cannot_hold() -> None:
    ids = ["a", "é\n,\"'", "", "x" * 128]
    assert unpack_ids(pack_ids(ids), 4) == tuple(ids)
    assert unpack_ids(b"", 0) == ()
    with pytest.raises(ValueError, match="NUL"):
        pack_ids(["a\x00b"])
    with pytest.raises(ValueError, match="hold 2 ids, the row says 3"):
        unpack_ids(pack_ids(["a", "b"]), 3)
    weird = np.array([np.nan, -np.nan, np.inf, -0.0, 5e-324], dtype=np.float64)
    assert unpack_floats(weird.astype("<f8").tobytes(), 5).tobytes() == weird.tobytes()
    with pytest.raises(ValueError, match="holds 5 values, the row says 4"):
        unpack_floats(weird.tobytes(), 4)


def test_replacing_a_day_replaces_its_packed_row(engine: sa.Engine, sample: SampleUniverse) -> None:
    frame, rejections = sample.universe_for(DAY)
    other, _ = sample.universe_for(DAY + timedelta(days=1))
    replace_pool_day(engine, DAY + timedelta(days=1), other, [], source="sample")
    replace_pool_day(engine, DAY, frame, rejections, source="sample")
    assert len(assert_packed_is_the_rows(engine, DAY).pools) == len(frame)
    smaller = frame.iloc[10:50].assign(tvlUsd=7.0)
    replace_pool_day(engine, DAY, smaller, [], source="sample")
    assert len(assert_packed_is_the_rows(engine, DAY).pools) == 40
    assert_packed_is_the_rows(engine, DAY + timedelta(days=1))  # the other day untouched
    # a write that fails leaves the day's rows and its packed row as they were
    bad_rejections = [Rejection(1, "a", "x"), Rejection(1, "b", "y")]  # duplicate row number
    with pytest.raises(sa.exc.IntegrityError):
        replace_pool_day(engine, DAY, frame, bad_rejections, source="sample")
    assert len(assert_packed_is_the_rows(engine, DAY).pools) == 40
    # a day replaced by no rows has no packed row
    replace_pool_day(engine, DAY, frame.iloc[:0], [], source="sample")
    assert packed(engine, DAY) is None
    assert list(load_day_series(engine, first=DAY, before=DAY + timedelta(days=2))) == [
        DAY + timedelta(days=1)
    ]


def test_upserted_pools_rewrite_the_packed_row(engine: sa.Engine, sample: SampleUniverse) -> None:
    frame, rejections = sample.universe_for(DAY)
    replace_pool_day(engine, DAY, frame.iloc[:30], rejections, source="sample")
    changed = frame.iloc[25:40].assign(tvlUsd=1.0, apyReward=np.nan)  # 5 changed, 10 new
    upsert_pool_rows(engine, DAY, changed, source="defillama-chart")
    series = assert_packed_is_the_rows(engine, DAY)
    assert len(series.pools) == 40
    assert series.values["tvlUsd"][list(series.pools).index(changed["pool"].iloc[0])] == 1.0


def test_the_table_refuses_an_empty_packed_day(engine: sa.Engine) -> None:
    row = {"metric_date": DAY, "pools": 0, "pool_ids": b""}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(pool_day_series.insert(), row | {c: b"" for c in SERIES_COLUMNS.values()})


def test_days_on_either_side_of_the_epochs_load_as_themselves(engine: sa.Engine) -> None:
    """PostgreSQL's binary COPY counts days from 2000-01-01: before it the count is negative."""
    frame = awkward_frame()
    days = [date(1969, 12, 31), date(1999, 12, 31), date(2000, 1, 1), date(2000, 1, 2)]
    for k, day in enumerate(days):
        replace_pool_day(engine, day, frame.iloc[k:], [], source="defillama")
    loaded = load_day_series(engine, first=date(1960, 1, 1), before=date(2000, 1, 3))
    assert list(loaded) == days
    assert [len(s.pools) for s in loaded.values()] == [4, 3, 2, 1]
    for day in days:
        assert same_bits(
            loaded[day].values["apy"], assert_packed_is_the_rows(engine, day).values["apy"]
        )
