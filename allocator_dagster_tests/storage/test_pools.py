"""The pool tables on SQLite and PostgreSQL: one transaction per day, exact round trips."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from allocator_dagster.cli import main as cli
from allocator_dagster.forecast import attach_forecast, forecast_for_day
from allocator_dagster.sources.records import (
    FORECAST_COLUMNS,
    NO_LIMITS,
    POOL_COLUMNS,
    Rejection,
    validate_pool_records,
)
from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.pools import (
    accepted_day_counts,
    load_pool_day,
    load_pool_history,
    load_pool_rejections,
    load_pool_values,
    replace_pool_day,
    stored_days_between,
    stored_pool_days,
    upsert_pool_rows,
)
from allocator_dagster.storage.schema import pool_daily_metrics, pool_day_series, pool_rejections

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "defillama" / "pools.json"
DAY = date(2026, 3, 10)
STAMP = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample() -> SampleUniverse:
    return SampleUniverse(n_pools=300)


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


def test_history_window_excludes_the_day_itself(engine: sa.Engine, sample: SampleUniverse) -> None:
    days = [DAY - timedelta(days=d) for d in range(4, -2, -1)]  # DAY-4 .. DAY+1
    for day in days:
        frame, _ = sample.universe_for(day)
        replace_pool_day(engine, day, frame.iloc[:20], [], source="sample")
    history = load_pool_history(engine, before=DAY, days=3)
    assert list(history.columns) == ["date", "pool", "tvlUsd", "apy", "apyBase", "apyReward"]
    assert sorted(set(history["date"].dt.date)) == [DAY - timedelta(days=d) for d in (3, 2, 1)]
    assert str(history["date"].dtype) == "datetime64[ns]"
    expected = sample.history(DAY - timedelta(days=3), DAY - timedelta(days=1))
    expected = expected[expected["pool"].isin(set(history["pool"]))].reset_index(drop=True)
    pd.testing.assert_frame_equal(history, expected, check_dtype=False)
    assert load_pool_history(engine, before=DAY, days=0).empty
    assert stored_pool_days(engine) == days


def test_chosen_pools_and_days_are_those_of_the_whole_window(
    engine: sa.Engine, sample: SampleUniverse
) -> None:
    """Asked by pool and by day (the trailing APY of held pools, the forecast's days without a
    packed row), the history is the whole window's filtered: the same rows, order and values;
    the stored days between two dates are those with rows, gaps left out."""
    days = [DAY - timedelta(days=d) for d in (9, 8, 6, 5, 2, 1, 0)]  # gaps at -7, -4, -3
    for day in days:
        frame, _ = sample.universe_for(day)
        replace_pool_day(engine, day, frame.iloc[:30], [], source="sample")
    whole = load_pool_history(engine, before=DAY, days=8)
    pools = sorted(set(whole["pool"]))[3:40:4] + ["not-stored"]
    only = [DAY - timedelta(days=d) for d in (12, 8, 7, 5, 1, 0)]  # some outside the window

    def expected(keep: pd.Series) -> pd.DataFrame:
        return whole[keep].reset_index(drop=True)

    chosen_pools = whole["pool"].isin(pools)
    chosen_days = whole["date"].dt.date.isin(only)
    by_pool = load_pool_history(engine, before=DAY, days=8, pools=pools)
    pd.testing.assert_frame_equal(by_pool, expected(chosen_pools))
    by_day = load_pool_history(engine, before=DAY, days=8, only_days=only)
    pd.testing.assert_frame_equal(by_day, expected(chosen_days))
    both = load_pool_history(engine, before=DAY, days=8, pools=pools, only_days=only)
    pd.testing.assert_frame_equal(both, expected(chosen_pools & chosen_days))
    assert sorted(set(by_pool["date"].dt.date)) == days[1:-1]
    assert load_pool_history(engine, before=DAY, days=8, only_days=[DAY]).empty

    assert stored_days_between(engine, first=DAY - timedelta(days=8), before=DAY) == days[1:-1]
    assert stored_days_between(engine, first=DAY, before=DAY) == []
    assert (
        stored_days_between(engine, first=DAY - timedelta(days=400), before=DAY + timedelta(1))
        == days
    )


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


def test_history_is_in_python_order_whatever_the_collation(engine: sa.Engine) -> None:
    """Ids whose order differs between Python and a locale collation (upper case, digits,
    punctuation), or that a CSV reader could take for a number or a null, come back as text
    in (date, pool) order as Python sorts them, with null numbers as NaN."""
    ids = ["b-pool", "B-pool", "a_pool", "A-pool", "10", "9", "é-pool", "NA", "1e5", "nan", 'x,"y']
    records = [
        {"pool": p, "chain": "Ethereum", "project": "aave-v3", "symbol": "USDC", "tvlUsd": 1e6 + i}
        | ({"apyBase": 1.5} if i % 2 else {})
        for i, p in enumerate(ids)
    ]
    frame, _ = validate_pool_records(records, source="defillama")
    for k in (2, 1):
        replace_pool_day(engine, DAY - timedelta(days=k), frame, [], source="defillama")
    history = load_pool_history(engine, before=DAY, days=2)
    assert history["pool"].tolist() == sorted(ids) * 2
    n = len(ids)
    assert (
        history["date"].dt.date.tolist()
        == [DAY - timedelta(days=2)] * n + [DAY - timedelta(days=1)] * n
    )
    expected = frame.set_index("pool").loc[sorted(ids)]
    assert history["tvlUsd"].tolist()[:n] == expected["tvlUsd"].tolist()
    no_apy = 2 * sum(1 for i in range(n) if i % 2 == 0)  # the pools without any APY, twice
    assert np.isnan(history["apy"].to_numpy()).sum() == no_apy
    assert str(history["date"].dtype) == "datetime64[ns]"


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


def test_cli_fetch_and_show(database_url: str, monkeypatch) -> None:
    monkeypatch.setenv("ALLOCATOR_POOL_SOURCE", "sample")
    runner = CliRunner()
    outputs = []
    for day in ("2025-01-01", "2026-01-02"):
        result = runner.invoke(
            cli, ["pools", "fetch", "--day", day, "--database-url", database_url]
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "0 pools with a forecast" in outputs[0]  # the sample's first day has no history
    assert " 0 pools with a forecast" not in outputs[1]
    stored = load_pool_day(get_engine(database_url), date(2026, 1, 2))
    # The sample's forecast comes from the sample's own 60 days, not from what is stored.
    history = SampleUniverse().history(date(2025, 11, 3), date(2026, 1, 1))
    expected = forecast_for_day(history, date(2026, 1, 2)).set_index("pool")
    got = stored.set_index("pool")[list(FORECAST_COLUMNS)].dropna()
    assert len(got) > 1000
    pd.testing.assert_frame_equal(got, expected.loc[got.index], check_names=False)
    shown = runner.invoke(
        cli, ["pools", "show", "--day", "2026-01-02", "--top", "3", "--database-url", database_url]
    )
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"2026-01-02: {len(stored)} pools, " + lines[0].split(", ", 1)[1]
    top3 = stored.sort_values("tvlUsd", ascending=False)["pool"].head(3).tolist()
    assert [line.split()[0] for line in lines[3:6]] == top3
    missing = runner.invoke(
        cli, ["pools", "show", "--day", "2019-01-01", "--database-url", database_url]
    )
    assert missing.exit_code == 2 and missing.output.startswith(
        "error: no pool data stored for 2019-01-01"
    )
    monkeypatch.setenv("ALLOCATOR_POOL_SOURCE", "nonsense")
    bad = runner.invoke(
        cli, ["pools", "fetch", "--day", "2026-01-03", "--database-url", database_url]
    )
    assert bad.exit_code != 0 and "ALLOCATOR_POOL_SOURCE='nonsense'" in bad.output


def test_accepted_day_counts_read_the_packed_rows(
    engine: sa.Engine, sample: SampleUniverse
) -> None:
    """A full day is counted by its packed row (written with its rows), a day without one by
    its rows; a day of `/chart` rows only, or without rows, is no accepted day."""
    frame, _ = sample.universe_for(DAY)
    days = [DAY - timedelta(days=k) for k in range(6, 0, -1)]
    sizes = [10, 12, 3, 8, 9]  # days[5]: nothing stored
    for day, size in zip(days, sizes, strict=False):
        chart = day == days[2]
        source = "defillama-chart" if chart else "sample"
        replace_pool_day(engine, day, frame.iloc[:size], [], source=source)
    upsert_pool_rows(engine, days[0], frame.iloc[20:25], source="defillama-chart")  # 15 rows
    with engine.begin() as conn:
        conn.execute(pool_day_series.delete().where(pool_day_series.c.metric_date == days[1]))
        conn.execute(  # what the packed row says is the day's count
            pool_day_series.update()
            .where(pool_day_series.c.metric_date == days[3])
            .values(pools=99)
        )
        counts = accepted_day_counts(conn, before=DAY, window_days=6)
        assert counts == [(days[0], 15), (days[1], 12), (days[3], 99), (days[4], 9)]
        assert accepted_day_counts(conn, before=DAY, window_days=2) == [(days[4], 9)]
