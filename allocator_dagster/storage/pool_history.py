"""The pool history window (date, pool, TVL, APYs) of the days before a day: what the forecast
and the trailing APY read, of every pool or of chosen pools and days."""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allocator_dagster.sources.records import HISTORY_COLUMNS
from allocator_dagster.storage.db import copy_out
from allocator_dagster.storage.pool_columns import nullable_floats
from allocator_dagster.storage.schema import pool_daily_metrics


def load_pool_history(
    engine: sa.Engine,
    *,
    before: date,
    days: int,
    pools: Collection[str] | None = None,
    only_days: Collection[date] | None = None,
) -> pd.DataFrame:
    """(date, pool, tvlUsd, apy, apyBase, apyReward) of the `days` days before `before` (or
    only of those of them in `only_days`), of every pool or only of `pools`.

    Rows dated `before` or later are never returned: the forecast for a day must not see it.
    A 60-day window of the whole universe is over a million rows: the dates are read as ISO
    text and every column is converted by numpy in one call, not value by value in Python.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    table = pool_daily_metrics
    first = before - timedelta(days=days)
    query = sa.select(
        sa.cast(table.c.metric_date, sa.String).label("metric_date"),
        table.c.pool_id,
        table.c.tvl_usd,
        table.c.apy,
        table.c.apy_base,
        table.c.apy_reward,
    ).order_by(table.c.metric_date, table.c.pool_id)
    if pools is None and only_days is None:
        query = query.where(table.c.metric_date >= first, table.c.metric_date < before)
    else:
        # The days by name, not as a range: with the pools also by name, the key's index is
        # probed per (day, pool) instead of scanning every pool of the range (PostgreSQL: 190 ms
        # -> 2 ms for a held position's month at 20,000 pools a day).
        wanted = {first + timedelta(days=k) for k in range(days)}
        if only_days is not None:
            wanted &= set(only_days)
        query = query.where(table.c.metric_date.in_(sorted(wanted)))
    if pools is not None:
        query = query.where(table.c.pool_id.in_(sorted(pools)))
    with engine.connect() as conn:
        # COPY takes its query as text; pool ids are outside data, so they stay bound parameters
        if (
            pools is None
            and conn.dialect.name == "postgresql"
            and conn.dialect.driver == "psycopg2"
        ):
            return _copied_history(conn, query)
        # the driver's own tuples: every column is text or a float, which need no processing
        fetched = conn.execute(query).cursor.fetchall()
    return history_frame(fetched)


def _copied_history(conn: sa.Connection, query: sa.Select) -> pd.DataFrame:
    """The history query through PostgreSQL's COPY TO STDOUT (CSV), parsed by pandas in C:
    floats read back exactly (round_trip), only an empty number is NaN, ids stay text."""
    buffer = io.StringIO()
    copy_out(conn, query, buffer, "csv")  # its only literals are dates computed here
    buffer.seek(0)
    numbers = list(HISTORY_COLUMNS[2:])
    frame = pd.read_csv(
        buffer,
        header=None,
        names=list(HISTORY_COLUMNS),
        dtype={"date": str, "pool": str, **dict.fromkeys(numbers, "float64")},
        keep_default_na=False,
        na_values=dict.fromkeys(numbers, [""]),
        float_precision="round_trip",
    )
    dates = frame["date"].to_numpy(dtype=object).astype("datetime64[D]").astype("datetime64[ns]")
    pools = frame["pool"].to_numpy(dtype=object)
    out = pd.DataFrame(
        {
            "date": pd.Series(dates, dtype="datetime64[ns]"),
            "pool": pd.Series(pools, dtype="str"),
            **{name: frame[name].astype("float64").reset_index(drop=True) for name in numbers},
        }
    )
    if _sorted_by_date_and_pool(dates, pools):
        return out
    return out.sort_values(["date", "pool"], kind="stable").reset_index(drop=True)


def _sorted_by_date_and_pool(dates: np.ndarray, pools: np.ndarray) -> bool:
    """Whether rows are already in (date, pool) order (as the query asks; a collation may
    order ids differently from Python, and then the frame is sorted here)."""
    if len(dates) < 2:
        return True
    later = dates[1:] > dates[:-1]
    same = dates[1:] == dates[:-1]
    return bool(np.all(later | (same & (pools[1:] >= pools[:-1]))))


def history_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """A history frame with fixed dtypes from (date, pool, tvl, apy, base, reward) tuples
    (dates as `date` or ISO text), converted column by column in numpy."""
    table = np.array(rows, dtype=object) if len(rows) else np.empty((0, 6), dtype=object)
    days = table[:, 0]
    if len(days) and not isinstance(days[0], str):
        days = np.array([d.isoformat() for d in days], dtype=object)
    dates = days.astype("datetime64[D]").astype("datetime64[ns]")
    pools = table[:, 1]
    frame = pd.DataFrame(
        {
            "date": pd.Series(dates, dtype="datetime64[ns]"),
            "pool": pd.Series(pools, dtype="str"),
            **{
                name: pd.Series(nullable_floats(table[:, k].tolist()), dtype="float64")
                for k, name in enumerate(HISTORY_COLUMNS[2:], start=2)
            },
        }
    )
    if _sorted_by_date_and_pool(dates, pools):
        return frame
    return frame.sort_values(["date", "pool"], kind="stable").reset_index(drop=True)
