"""Each stored pool day's forecast inputs in one row: the `pool_day_series` table.

The live forecast reads the 60 days before today: at 20,000 pools that is over a million rows
of `pool_daily_metrics`, read and converted value by value. This table keeps, per stored day,
the same numbers packed: the pool ids (sorted as Python sorts str, NUL-separated UTF-8, which
no validated id contains) and TVL, APY, base APY and reward APY as float64 little-endian
arrays in that order, NULL as NaN. 60 days are then 60 rows and a few `frombuffer` calls.

It is derived data: `storage.pool_writes` rewrites it in the transaction that writes the day's rows
(`write_day_series`, `refresh_day_series`), the pool-day checks compare it with the rows
(`series_problems`), and a day without one (written before the table existed) is read from
the rows.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from allocator_dagster.storage.db import copy_out
from allocator_dagster.storage.schema import pool_daily_metrics, pool_day_series

# universe column -> column of both tables, in the packed row's order
SERIES_COLUMNS: dict[str, str] = {
    "tvlUsd": "tvl_usd",
    "apy": "apy",
    "apyBase": "apy_base",
    "apyReward": "apy_reward",
}
_FLOAT = np.dtype("<f8")
_SEPARATOR = "\x00"


@dataclass(frozen=True)
class DaySeries:
    """One stored day's pools (sorted) and their numbers (float64, NaN for NULL), by universe
    column name (`SERIES_COLUMNS`)."""

    pools: tuple[str, ...]
    values: Mapping[str, np.ndarray]


def pack_ids(ids: Sequence[str]) -> bytes:
    """The ids as one UTF-8 blob; refuses an id the separator would split."""
    text = _SEPARATOR.join(ids)
    if text.count(_SEPARATOR) != max(len(ids) - 1, 0):
        pool = next(p for p in ids if _SEPARATOR in p)
        raise ValueError(f"pool id {pool!r} contains a NUL character")
    return text.encode("utf-8")


def unpack_ids(blob: bytes, count: int) -> tuple[str, ...]:
    if count == 0:
        return ()
    ids = tuple(str(blob, "utf-8").split(_SEPARATOR))
    if len(ids) != count:
        raise ValueError(f"packed pool ids hold {len(ids)} ids, the row says {count}")
    return ids


def pack_floats(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype=_FLOAT).tobytes()


def unpack_floats(blob: bytes, count: int) -> np.ndarray:
    values = np.frombuffer(blob, dtype=_FLOAT)
    if len(values) != count:
        raise ValueError(f"a packed column holds {len(values)} values, the row says {count}")
    return values.astype(np.float64)  # native order, writable


def series_row(
    dialect: sa.Dialect, day: date, ids: Sequence[str], columns: Mapping[str, Sequence[Any]]
) -> dict[str, Any]:
    """The table row of a day whose rows hold `ids` and, by table column, their numbers
    (None for NULL), in any order; the numbers are packed as the database reads them back."""
    order = sorted(range(len(ids)), key=ids.__getitem__)
    row: dict[str, Any] = {
        "metric_date": day,
        "pools": len(ids),
        "pool_ids": pack_ids([ids[k] for k in order]),
    }
    for target in SERIES_COLUMNS.values():
        values = np.array(columns[target], dtype=float)[order] if len(ids) else np.array([])
        if dialect.name == "sqlite":  # SQLite stores -0.0 as 0: keep what the rows give back
            values = np.where(values == 0.0, 0.0, values)
        row[target] = pack_floats(values)
    return row


def write_day_series(
    conn: sa.Connection, day: date, ids: Sequence[str], columns: Mapping[str, Sequence[Any]]
) -> None:
    """Replace the day's row by the one of these rows (none for a day without rows), in the
    caller's transaction."""
    conn.execute(pool_day_series.delete().where(pool_day_series.c.metric_date == day))
    if len(ids):
        conn.execute(pool_day_series.insert(), series_row(conn.dialect, day, ids, columns))


def refresh_day_series(conn: sa.Connection, day: date) -> None:
    """Rewrite the day's row from the day's stored rows (after a write of part of the day)."""
    table = pool_daily_metrics
    fetched = conn.execute(
        sa.select(table.c.pool_id, *(table.c[t] for t in SERIES_COLUMNS.values())).where(
            table.c.metric_date == day
        )
    ).all()
    values = list(zip(*fetched, strict=True)) if fetched else [()] * (1 + len(SERIES_COLUMNS))
    columns = dict(zip(SERIES_COLUMNS.values(), values[1:], strict=True))
    write_day_series(conn, day, list(values[0]), columns)


def _decoded(row: Sequence[Any]) -> DaySeries:
    count = int(row[1])
    return DaySeries(
        unpack_ids(row[2], count),
        {
            name: unpack_floats(blob, count)
            for name, blob in zip(SERIES_COLUMNS, row[3:], strict=True)
        },
    )


def _query() -> sa.Select:
    table = pool_day_series
    return sa.select(
        table.c.metric_date,
        table.c.pools,
        table.c.pool_ids,
        *(table.c[t] for t in SERIES_COLUMNS.values()),
    )


def load_day_series(engine: sa.Engine, *, first: date, before: date) -> dict[date, DaySeries]:
    """The packed days in [first, before), by day (a day without a row is absent)."""
    table = pool_day_series
    query = _query().where(table.c.metric_date >= first, table.c.metric_date < before)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2":
            rows: Iterator[Sequence[Any]] = _copied_rows(conn, query)
        else:
            rows = iter(conn.execute(query))
        return {row[0]: _decoded(row) for row in rows}


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_POSTGRES_EPOCH = date(2000, 1, 1)


def _copied_rows(conn: sa.Connection, query: sa.Select) -> Iterator[tuple[Any, ...]]:
    """The rows of `query` (date, int4, then bytea columns) through PostgreSQL's binary COPY:
    the blobs as they are stored, not as hex text twice their size to encode and decode."""
    buffer = io.BytesIO()
    copy_out(conn, query, buffer, "binary")  # its only literals are the caller's two dates
    data = memoryview(buffer.getbuffer())
    if bytes(data[:11]) != _COPY_SIGNATURE:
        raise ValueError("not a PostgreSQL binary COPY stream")
    (extension,) = struct.unpack_from(">i", data, 15)
    at = 19 + extension
    while True:
        (fields,) = struct.unpack_from(">h", data, at)
        at += 2
        if fields == -1:
            return
        values: list[Any] = []
        for _ in range(fields):
            (size,) = struct.unpack_from(">i", data, at)
            at += 4
            if size < 0:
                values.append(None)
                continue
            values.append(data[at : at + size])
            at += size
        day_number, count = struct.unpack(">i", values[0]), struct.unpack(">i", values[1])
        yield (_POSTGRES_EPOCH + timedelta(days=day_number[0]), count[0], *values[2:])


def load_one_day_series(conn: sa.Connection, day: date) -> DaySeries | None:
    row = conn.execute(_query().where(pool_day_series.c.metric_date == day)).first()
    return None if row is None else _decoded(row)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal values, bit for bit but NaN's payload: NaN equals NaN, -0.0 differs from 0.0."""
    with np.errstate(invalid="ignore"):
        return ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))


def series_problems(
    day: date, pools: Sequence[str], values: Mapping[str, np.ndarray], stored: DaySeries | None
) -> list[str]:
    """How the day's packed row differs from its rows (`pools` sorted, `values` by universe
    column): missing, other pools, other numbers (the first pools named)."""
    if stored is None:
        return [f"{day}: {len(pools)} pool rows but no packed row"] if len(pools) else []
    if not len(pools):
        return [f"{day}: a packed row of {len(stored.pools)} pools but no pool rows"]
    if tuple(pools) != stored.pools:
        extra = sorted(set(stored.pools) - set(pools))
        lacking = sorted(set(pools) - set(stored.pools))
        return [
            f"{day}: the packed row lists {len(stored.pools)} pools, the rows {len(pools)}"
            + (f"; only packed: {', '.join(extra[:5])}" if extra else "")
            + (f"; only in rows: {', '.join(lacking[:5])}" if lacking else "")
        ]
    problems = []
    for name, packed in stored.values.items():
        differs = np.flatnonzero(~_same(np.asarray(values[name], dtype=float), packed))
        if len(differs):
            named = ", ".join(str(pools[k]) for k in differs[:5].tolist())
            problems.append(
                f"{day}: the packed {name} of {len(differs)} pool(s) differs from the rows "
                f"({named})"
            )
    return problems
