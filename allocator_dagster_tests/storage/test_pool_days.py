"""The stored pool days on SQLite and PostgreSQL: which days have rows, and the rows of each
full snapshot."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.storage.pool_days import (
    accepted_day_counts,
    stored_days_between,
    stored_pool_days,
)
from allocator_dagster.storage.pool_writes import replace_pool_day, upsert_pool_rows
from allocator_dagster.storage.schema import pool_day_series

DAY = date(2026, 3, 10)


def test_stored_days_between_are_the_days_with_rows(
    engine: sa.Engine, sample: SampleUniverse
) -> None:
    """The stored days between two dates are those with rows, oldest first, gaps left out."""
    days = [DAY - timedelta(days=d) for d in (9, 8, 6, 5, 2, 1, 0)]  # gaps at -7, -4, -3
    for day in days:
        frame, _ = sample.universe_for(day)
        replace_pool_day(engine, day, frame.iloc[:30], [], source="sample")
    assert stored_days_between(engine, first=DAY - timedelta(days=8), before=DAY) == days[1:-1]
    assert stored_days_between(engine, first=DAY, before=DAY) == []
    assert (
        stored_days_between(engine, first=DAY - timedelta(days=400), before=DAY + timedelta(1))
        == days
    )
    assert stored_pool_days(engine) == days


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
