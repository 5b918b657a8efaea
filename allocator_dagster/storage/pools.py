"""Reads and writes of the pool tables: `pool_daily_metrics` and `pool_rejections`.

A day is the unit of storage: `replace_pool_day` deletes the day's rows and inserts the new
ones in one transaction, so re-running a day never duplicates rows and a failed write leaves
the previous rows as they were. `upsert_pool_rows` does the same for only the given pools of a
day (the history import adds pools to a day without dropping the others). Both rewrite the
day's packed forecast inputs (`day_series`) in the same transaction. Everything goes
through SQLAlchemy Core with bound parameters and `executemany` inserts.

The frames read back have the universe's columns and dtypes (`sources.records`), so a stored
day equals the frame that was written.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allocator_dagster.sources.records import (
    FORECAST_COLUMNS,
    POOL_COLUMNS,
    PoolSource,
    Rejection,
    nan_to_none,
    universe_frame,
)
from allocator_dagster.storage.day_series import refresh_day_series, write_day_series
from allocator_dagster.storage.db import copy_out
from allocator_dagster.storage.schema import pool_daily_metrics, pool_day_series, pool_rejections

# Universe column -> table column.
COLUMN_MAP: dict[str, str] = {
    "pool": "pool_id",
    "chain": "chain",
    "project": "project",
    "symbol": "symbol",
    "underlyingTokens": "underlying_tokens",
    "tvlUsd": "tvl_usd",
    "apy": "apy",
    "apyBase": "apy_base",
    "apyReward": "apy_reward",
    "apyMean30d": "apy_mean_30d",
    "stablecoin": "stablecoin",
    "ilRisk": "il_risk",
    "exposure": "exposure",
    "poolMeta": "pool_meta",
    **{name: name for name in FORECAST_COLUMNS},
}
HISTORY_COLUMNS = ("date", "pool", "tvlUsd", "apy", "apyBase", "apyReward")
_REQUIRED = ("pool", "chain", "project", "symbol", "tvlUsd")
_REALS = ("tvlUsd", "apy", "apyBase", "apyReward", "apyMean30d", *FORECAST_COLUMNS)


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
        elif name in _REALS:
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


def _insert_columns(
    conn: sa.Connection,
    table: sa.Table,
    columns: dict[str, list[Any]],
    constants: dict[str, Any],
) -> None:
    """One executemany INSERT of per-row `columns` plus `constants` (the same in every row).

    On qmark drivers (SQLite) the rows go straight to the cursor, with SQLAlchemy's own bind
    processors applied column by column: the same statement and stored values as
    `conn.execute(table.insert(), rows)`, without its per-row parameter handling (most of the
    time of a 1,000-row day). Elsewhere SQLAlchemy's executemany (batched on PostgreSQL).
    """
    names = [*columns, *constants]
    size = len(next(iter(columns.values()))) if columns else 0
    if size == 0:
        return
    dialect = conn.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        _copy_columns(conn, table, columns, constants, size)
        return
    if dialect.paramstyle != "qmark":
        rows = [
            {**dict(zip(columns, values, strict=True)), **constants}
            for values in zip(*columns.values(), strict=True)
        ]
        conn.execute(table.insert(), rows)
        return
    compiled = table.insert().compile(dialect=dialect, column_keys=names)
    processed: list[list[Any]] = []
    for name in compiled.positiontup or ():
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if name in constants:
            value = constants[name] if process is None else process(constants[name])
            processed.append([value] * size)
        else:
            values = columns[name]
            if process is None:
                processed.append(values)
            elif isinstance(table.c[name].type, sa.JSON):
                processed.append(_json_texts(process, values))
            else:
                processed.append([process(v) for v in values])
    conn.exec_driver_sql(compiled.string, list(zip(*processed, strict=True)))


def _json_texts(encode: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    """`[encode(v) for v in values]` for a JSON column whose values repeat (token lists):
    each distinct list of str encoded once."""
    memo: dict[tuple[str, ...], Any] = {}
    out = []
    for v in values:
        if type(v) is list and all(type(t) is str for t in v):
            key = tuple(v)
            text = memo.get(key)
            if text is None:
                text = memo[key] = encode(v)
            out.append(text)
        else:
            out.append(encode(v))
    return out


def _csv_field(value: Any) -> str:
    """One CSV field for COPY: NULL is the unquoted empty field, text is always quoted (so an
    empty string stays a string), a float is its `repr` (the text psycopg2 sends for a bound
    float, so the stored value is that of an INSERT)."""
    if value is None:
        return ""
    if type(value) is bool:
        return "t" if value else "f"
    if type(value) is float or type(value) is int:
        return repr(value)
    text = value.isoformat() if isinstance(value, date) else str(value)
    return '"' + text.replace('"', '""') + '"'


def _csv_column(values: list[Any]) -> list[str]:
    """`[_csv_field(v) for v in values]`, with the common columns (numbers, text, each with
    nulls) written without a call per value."""
    kinds = set(map(type, values))
    if kinds <= {float, type(None)}:
        return ["" if v is None else float.__repr__(v) for v in values]
    if kinds <= {str, type(None)}:
        return ["" if v is None else '"' + v.replace('"', '""') + '"' for v in values]
    return [_csv_field(v) for v in values]


def _copy_columns(
    conn: sa.Connection,
    table: sa.Table,
    columns: dict[str, list[Any]],
    constants: dict[str, Any],
    size: int,
) -> None:
    """The same rows through PostgreSQL's COPY FROM STDIN (CSV), in the open transaction."""
    json_columns = {c.name for c in table.c if isinstance(c.type, sa.JSON)}
    names = [*columns, *constants]
    fields = [
        _csv_column(_json_texts(json.dumps, values) if name in json_columns else values)
        for name, values in columns.items()
    ]
    fields += [[_csv_field(value)] * size for value in constants.values()]
    buffer = io.StringIO("".join(",".join(row) + "\n" for row in zip(*fields, strict=True)))
    quote = conn.dialect.identifier_preparer.quote
    statement = (
        f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        "FROM STDIN WITH (FORMAT csv)"
    )
    dbapi = conn.dialect.loaded_dbapi
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(statement, buffer)
    except dbapi.Error as exc:  # as SQLAlchemy raises it for an INSERT (e.g. IntegrityError)
        raise sa.exc.DBAPIError.instance(
            statement, None, exc, dbapi.Error, dialect=conn.dialect
        ) from exc
    finally:
        cursor.close()


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
        _insert_columns(conn, pool_daily_metrics, columns, constants)
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


def _nullable_float(values: Sequence[Any]) -> np.ndarray:
    """Floats with None (SQL null) as NaN; numpy converts None to NaN itself, in C."""
    return np.array(values, dtype=float) if len(values) else np.array([], dtype=float)


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
    reals = {name: _nullable_float(columns[name]) for name in _REALS}
    frame = universe_frame({**columns, **reals}, forecast=True)
    # The database's collation may order ids differently from Python: sort here, not in SQL.
    if frame["pool"].is_monotonic_increasing:
        return frame
    return frame.sort_values("pool", kind="stable").reset_index(drop=True)


def load_pool_values(engine: sa.Engine, day: date) -> pd.DataFrame:
    """The stored pool ids and numbers of `day` (pool, the APYs, TVL, forecasts), sorted by
    pool id: what the day checks read, without the text and token columns of `load_pool_day`."""
    table = pool_daily_metrics
    names = ("pool", *_REALS)
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
                name: pd.Series(_nullable_float(column), dtype="float64")
                for name, column in zip(_REALS, values[1:], strict=True)
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
                name: pd.Series(_nullable_float(table[:, k].tolist()), dtype="float64")
                for k, name in enumerate(HISTORY_COLUMNS[2:], start=2)
            },
        }
    )
    if _sorted_by_date_and_pool(dates, pools):
        return frame
    return frame.sort_values(["date", "pool"], kind="stable").reset_index(drop=True)


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


LAST_SEEN_WINDOW_DAYS = 30  # how far back the last listing of a missing pool is looked up


def listings_before(
    conn: sa.Connection, day: date, pools: Sequence[str], days: int
) -> tuple[dict[date, frozenset[str] | None], dict[str, tuple[str, str, str]]]:
    """For the `days` days before `day`: which of `pools` each stored full snapshot lists (None
    for a day without one: only `/chart` imports or nothing), and the (chain, project, symbol)
    of each pool's latest listing within `LAST_SEEN_WINDOW_DAYS` (for `vanished`)."""
    table = pool_daily_metrics
    if not pools:
        return {}, {}
    first = day - timedelta(days=max(days, 0))
    earlier: dict[date, frozenset[str] | None] = {}
    if days > 0:
        full = sa.func.sum(sa.case((table.c.source != str(PoolSource.DEFILLAMA_CHART), 1), else_=0))
        full_days = {
            d
            for d, n in conn.execute(
                sa.select(table.c.metric_date, full)
                .where(table.c.metric_date >= first, table.c.metric_date < day)
                .group_by(table.c.metric_date)
            )
            if n
        }
        listed: dict[date, set[str]] = {d: set() for d in full_days}
        for d, pool in conn.execute(
            sa.select(table.c.metric_date, table.c.pool_id).where(
                table.c.metric_date >= first,
                table.c.metric_date < day,
                table.c.pool_id.in_(list(pools)),
            )
        ):
            if d in listed:
                listed[d].add(pool)
        for back in range(1, days + 1):
            d = day - timedelta(days=back)
            earlier[d] = frozenset(listed[d]) if d in listed else None
    last_seen: dict[str, tuple[str, str, str]] = {}
    for pool, chain, project, symbol in conn.execute(
        sa.select(table.c.pool_id, table.c.chain, table.c.project, table.c.symbol)
        .where(
            table.c.metric_date >= day - timedelta(days=LAST_SEEN_WINDOW_DAYS),
            table.c.metric_date < day,
            table.c.pool_id.in_(list(pools)),
        )
        .order_by(table.c.metric_date)
    ):
        last_seen[pool] = (chain, project, symbol)  # the latest day wins
    return earlier, last_seen
