"""Which days the pool table holds: every stored day, those of a range, and the rows of each
full snapshot (the admission of a new day compares its size with them)."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from allocator_dagster.sources.records import PoolSource
from allocator_dagster.storage.schema import pool_daily_metrics, pool_day_series


def stored_pool_days(engine: sa.Engine) -> list[date]:
    """Every day that has pool rows, oldest first."""
    table = pool_daily_metrics
    query = sa.select(table.c.metric_date).distinct().order_by(table.c.metric_date)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(query)]


def stored_days_between(engine: sa.Engine, *, first: date, before: date) -> list[date]:
    """The days in [first, before) that have pool rows, oldest first.

    One indexed probe a day (`EXISTS`), not a `DISTINCT` over the range: that reads every row's
    index entry (half a million for a month at 20,000 pools; on PostgreSQL also the heap pages
    not vacuumed since, 0.26 s against 1 ms)."""
    table = pool_daily_metrics
    days = [first + timedelta(days=k) for k in range((before - first).days)]
    stored: list[date] = []
    with engine.connect() as conn:
        for start in range(0, len(days), _PROBES_PER_QUERY):
            chunk = days[start : start + _PROBES_PER_QUERY]
            probes = [
                sa.exists().where(table.c.metric_date == d).label(f"d{i}")
                for i, d in enumerate(chunk)
            ]
            found = conn.execute(sa.select(*probes)).one()
            stored += [d for d, present in zip(chunk, found, strict=True) if present]
    return stored


_PROBES_PER_QUERY = 200  # columns of one SELECT (SQLite allows 2,000, PostgreSQL 1,664)


def accepted_day_counts(
    conn: sa.Connection, *, before: date, window_days: int
) -> list[tuple[date, int]]:
    """(day, rows) of the stored days in [before - window_days, before) that hold a full
    snapshot, i.e. at least one row not written by the `/chart` history import (an import of
    chosen pools is no measure of the universe's size). Oldest first.

    A day's rows are counted by its packed row (`day_series`: its `pools`, written in the
    transaction that writes the day's rows, compared with them by the `packed_row_matches`
    check), or by counting them for a day without one. Counting a month of 20,000-pool days
    reads 600,000 index entries, and on PostgreSQL the heap pages of every day not vacuumed
    since it was written (0.2 to 0.7 s, most of the staged swap's admission); each day here is
    one indexed probe."""
    table = pool_daily_metrics
    counts = []
    for k in range(window_days, 0, -1):
        day = before - timedelta(days=k)
        full = sa.exists().where(
            table.c.metric_date == day, table.c.source != str(PoolSource.DEFILLAMA_CHART)
        )
        packed = (
            sa.select(pool_day_series.c.pools)
            .where(pool_day_series.c.metric_date == day)
            .scalar_subquery()
        )
        is_full, rows = conn.execute(sa.select(full, packed)).one()
        if not is_full:
            continue
        if rows is None:  # a day written before the packed rows existed, or by hand
            rows = conn.execute(
                sa.select(sa.func.count()).where(table.c.metric_date == day)
            ).scalar_one()
        counts.append((day, int(rows)))
    return counts
