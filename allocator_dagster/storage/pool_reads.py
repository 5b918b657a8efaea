"""Reading a stored pool day: its universe (`load_pool_day`), only its numbers
(`load_pool_values`) and its rejected records (`load_pool_rejections`).

The frames read back have the universe's columns and dtypes (`sources.records`), so a stored
day equals the frame that was written (`pool_writes`).
"""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from typing import Any

import pandas as pd
import sqlalchemy as sa

from allocator_dagster.sources.records import (
    FORECAST_COLUMNS,
    POOL_COLUMNS,
    Rejection,
    universe_frame,
)
from allocator_dagster.storage.pool_columns import COLUMN_MAP, REAL_COLUMNS, nullable_floats
from allocator_dagster.storage.schema import pool_daily_metrics, pool_rejections


@lru_cache(maxsize=65536)
def _tokens_of_json(text: str) -> tuple[str, ...]:
    """JSON text of a token list, decoded once per distinct text (pools repeat every day)."""
    value = json.loads(text)
    return () if value is None else tuple(str(v) for v in value)


def _tokens(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # JSON text (SQLite), or a driver that hands it back
        return _tokens_of_json(value)
    return tuple(str(v) for v in value)


def load_pool_day(engine: sa.Engine, day: date) -> pd.DataFrame:
    """The stored universe of `day` with its forecast columns, sorted by pool id (empty if none)."""
    table = pool_daily_metrics
    targets = [COLUMN_MAP[name] for name in POOL_COLUMNS + FORECAST_COLUMNS]
    # The token lists are read as text (cast in SQL: PostgreSQL's driver would decode each
    # JSONB value itself) and decoded by `_tokens` (memoised): the same JSON decoding as the
    # JSON type's, without decoding every day's repeated lists again.
    query = (
        sa.select(
            *(
                sa.cast(table.c[t], sa.Text()) if t == "underlying_tokens" else table.c[t]
                for t in targets
            )
        )
        .where(table.c.metric_date == day)
        .order_by(table.c.pool_id)
    )
    with engine.connect() as conn:
        # the driver's own tuples: the columns need no processing but the flag (0/1 on
        # SQLite), which the frame's bool dtype converts
        fetched = conn.execute(query).cursor.fetchall()
    names = POOL_COLUMNS + FORECAST_COLUMNS
    columns: dict[str, list[Any]] = {name: [] for name in names}
    if fetched:
        for name, values in zip(names, zip(*fetched, strict=True), strict=True):
            columns[name] = list(values)
    columns["underlyingTokens"] = [_tokens(v) for v in columns["underlyingTokens"]]
    reals = {name: nullable_floats(columns[name]) for name in REAL_COLUMNS}
    frame = universe_frame({**columns, **reals}, forecast=True)
    # The database's collation may order ids differently from Python: sort here, not in SQL.
    if frame["pool"].is_monotonic_increasing:
        return frame
    return frame.sort_values("pool", kind="stable").reset_index(drop=True)


def load_pool_values(engine: sa.Engine, day: date) -> pd.DataFrame:
    """The stored pool ids and numbers of `day` (pool, the APYs, TVL, forecasts), sorted by
    pool id: what the day checks read, without the text and token columns of `load_pool_day`."""
    table = pool_daily_metrics
    names = ("pool", *REAL_COLUMNS)
    query = sa.select(*(table.c[COLUMN_MAP[name]] for name in names)).where(
        table.c.metric_date == day
    )
    with engine.connect() as conn:
        fetched = conn.execute(query).cursor.fetchall()  # text and floats: no processing
    values = list(zip(*fetched, strict=True)) if fetched else [()] * len(names)
    frame = pd.DataFrame(
        {
            "pool": pd.Series(list(values[0]), dtype="str"),
            **{
                name: pd.Series(nullable_floats(column), dtype="float64")
                for name, column in zip(REAL_COLUMNS, values[1:], strict=True)
            },
        }
    )
    return frame.sort_values("pool", kind="stable").reset_index(drop=True)


def load_pool_rejections(engine: sa.Engine, day: date) -> list[Rejection]:
    """The records rejected on `day`, in row order."""
    table = pool_rejections
    query = (
        sa.select(table.c.row_number, table.c.pool_id, table.c.reason)
        .where(table.c.metric_date == day)
        .order_by(table.c.row_number)
    )
    with engine.connect() as conn:
        return [Rejection(r.row_number, r.pool_id, r.reason) for r in conn.execute(query)]
