"""Writing a pool day: `pool_daily_metrics` and `pool_rejections`.

A day is the unit of storage: `replace_pool_day` deletes the day's rows and inserts the new
ones in one transaction, so re-running a day never duplicates rows and a failed write leaves
the previous rows as they were. `upsert_pool_rows` does the same for only the given pools of a
day (the history import adds pools to a day without dropping the others). Both rewrite the
day's packed forecast inputs (`day_series`) in the same transaction. Everything goes
through SQLAlchemy Core with bound parameters and bulk inserts (`bulk_insert`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allocator_dagster.sources.records import Rejection, nan_to_none
from allocator_dagster.storage.bulk_insert import insert_columns
from allocator_dagster.storage.day_series import refresh_day_series, write_day_series
from allocator_dagster.storage.pool_columns import COLUMN_MAP, REAL_COLUMNS
from allocator_dagster.storage.schema import pool_daily_metrics, pool_rejections

_REQUIRED = ("pool", "chain", "project", "symbol", "tvlUsd")


def _metric_columns(day: date, frame: pd.DataFrame) -> dict[str, list[Any]]:
    """The table columns of a universe frame (per-row values); refuses rows the table would
    store wrongly."""
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"pool frame for {day} lacks required column(s) {', '.join(missing)}")
    n = len(frame)
    columns: dict[str, list[Any]] = {}
    for name, target in COLUMN_MAP.items():
        if name not in frame.columns:
            columns[target] = [None] * n
        elif name in REAL_COLUMNS:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
            finite = np.isfinite(values)
            listed = values.tolist()
            if finite.all():
                columns[target] = listed
            else:
                columns[target] = [
                    v if ok else None for v, ok in zip(listed, finite.tolist(), strict=True)
                ]
        else:
            columns[target] = nan_to_none(frame[name].tolist())
    for pos, tvl in enumerate(columns["tvl_usd"]):
        if tvl is None or tvl < 0:
            pool = columns["pool_id"][pos]
            raise ValueError(f"pool {pool!r} on {day}: tvlUsd must be finite and >= 0")
    columns["underlying_tokens"] = [list(t) if t else [] for t in columns["underlying_tokens"]]
    columns["stablecoin"] = [bool(v) for v in columns["stablecoin"]]
    return columns


def _metric_rows(
    day: date, frame: pd.DataFrame, source: str, ingested_at: datetime
) -> list[dict[str, Any]]:
    """The table rows of a universe frame; refuses rows the table would store wrongly."""
    columns = _metric_columns(day, frame)
    constants = {"metric_date": day, "source": source, "ingested_at": ingested_at}
    return [
        {**dict(zip(columns, values, strict=True)), **constants}
        for values in zip(*columns.values(), strict=True)
    ]


def _rejection_rows(day: date, rejections: Iterable[Rejection], source: str) -> list[dict]:
    return [
        {
            "metric_date": day,
            "row_number": r.row_number,
            "pool_id": r.pool_id,
            "reason": r.reason,
            "source": source,
        }
        for r in rejections
    ]


def replace_pool_day(
    engine: sa.Engine,
    day: date,
    universe_df: pd.DataFrame,
    rejections: Sequence[Rejection],
    *,
    source: str,
    ingested_at: datetime | None = None,
    admit: Callable[[sa.Connection], None] | None = None,
) -> int:
    """Store one day's universe and rejections, replacing that day's rows; returns rows written.

    One transaction: delete + bulk insert, so the day is never half-written or duplicated.
    `admit`, if given, runs first in that transaction and raises to refuse the new rows: the
    stored day is then left exactly as it was (the staged swap of `pool_ingestion`).
    """
    ingested_at = ingested_at or datetime.now(UTC)
    columns = _metric_columns(day, universe_df)
    constants = {"metric_date": day, "source": source, "ingested_at": ingested_at}
    rejected = _rejection_rows(day, rejections, source)
    with engine.begin() as conn:
        if admit is not None:
            admit(conn)
        conn.execute(pool_daily_metrics.delete().where(pool_daily_metrics.c.metric_date == day))
        conn.execute(pool_rejections.delete().where(pool_rejections.c.metric_date == day))
        insert_columns(conn, pool_daily_metrics, columns, constants)
        write_day_series(conn, day, columns["pool_id"], columns)
        if rejected:
            conn.execute(pool_rejections.insert(), rejected)
    return len(universe_df)


def upsert_pool_rows(
    engine: sa.Engine,
    day: date,
    universe_df: pd.DataFrame,
    *,
    source: str,
    ingested_at: datetime | None = None,
) -> int:
    """Replace only these pools' rows of `day` (the others and rejections stay); one transaction."""
    ingested_at = ingested_at or datetime.now(UTC)
    rows = _metric_rows(day, universe_df, source, ingested_at)
    if not rows:
        return 0
    pool_ids = [r["pool_id"] for r in rows]
    table = pool_daily_metrics
    with engine.begin() as conn:
        for start in range(0, len(pool_ids), 500):  # keep IN lists short on every backend
            chunk = pool_ids[start : start + 500]
            conn.execute(
                table.delete().where(table.c.metric_date == day, table.c.pool_id.in_(chunk))
            )
        conn.execute(table.insert(), rows)
        refresh_day_series(conn, day)
    return len(rows)
