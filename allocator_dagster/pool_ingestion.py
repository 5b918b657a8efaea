"""One day of pool data: fetch, validate, forecast, store (the `pool_daily_metrics` partition).

- `sample`: the bundled deterministic universe; the forecast reads the sample's own history, so
  a day's rows never depend on which other days happen to be stored.
- `history`: a recording (`ALLOCATOR_HISTORY_FILE`, `sources/history.py`), each day validated
  like a live fetch and forecast from the recording's own earlier days, as the sample is.
- `defillama`: today's `/pools` snapshot from the live API (history is built by storing every
  day, or imported with `allocator pools import-history`, i.e. `import_history` below); a past
  day must already be stored.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allocator_dagster.forecast import LOOKBACK_DAYS
from allocator_dagster.forecast.robust import with_forecast
from allocator_dagster.forecast.window import ForecastWindow
from allocator_dagster.pool_admission import REFERENCE_WINDOW_DAYS, row_count_problem
from allocator_dagster.sources.defillama import DefiLlamaClient, fetch_history
from allocator_dagster.sources.history import HistoryError, PoolHistory
from allocator_dagster.sources.records import PoolSource, Rejection
from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.storage.day_series import (
    SERIES_COLUMNS,
    load_day_series,
    load_one_day_series,
    series_problems,
)
from allocator_dagster.storage.pool_days import accepted_day_counts
from allocator_dagster.storage.pool_history import load_pool_history
from allocator_dagster.storage.pool_reads import load_pool_day, load_pool_values
from allocator_dagster.storage.pool_writes import replace_pool_day, upsert_pool_rows
from allocator_dagster.storage.schema import pool_daily_metrics


class PoolDataError(RuntimeError):
    """A day's pool data cannot be had; the message says from where and what to do."""


@dataclass
class IngestResult:
    day: dt.date
    source: PoolSource
    universe: pd.DataFrame
    rejections: list[Rejection] = field(default_factory=list)
    stored_rows: int = 0
    reused_stored_day: bool = False


@cache
def sample_universe(seed: int, n_pools: int) -> SampleUniverse:
    """One generator per (seed, size) per process: its history is computed once and cached."""
    return SampleUniverse(seed=seed, n_pools=n_pools)


def sample_day_frame(
    universe_source: SampleUniverse, day: dt.date
) -> tuple[pd.DataFrame, list[Rejection]]:
    """A sample day's universe with its forecast from the sample's own earlier days."""
    universe, rejections = universe_source.universe_for(day)
    forecast = _window(universe_source, universe_source.start).forecast(
        day, universe_source.history
    )
    return with_forecast(universe, forecast), rejections


# One forecast window per source whose rows never change (a sample generator, a parsed
# recording): a range run moves it a day at a time instead of rebuilding it every day.
_WINDOWS: weakref.WeakKeyDictionary[object, ForecastWindow] = weakref.WeakKeyDictionary()


def _window(source: object, start: dt.date) -> ForecastWindow:
    window = _WINDOWS.get(source)
    if window is None:
        window = _WINDOWS[source] = ForecastWindow(start)
    return window


def ingest_sample_day(
    engine: sa.Engine, day: dt.date, universe_source: SampleUniverse
) -> IngestResult:
    frame, rejections = sample_day_frame(universe_source, day)
    stored = replace_pool_day(engine, day, frame, rejections, source=PoolSource.SAMPLE)
    return IngestResult(day, PoolSource.SAMPLE, frame, rejections, stored)


def history_day_frame(recording: PoolHistory, day: dt.date) -> tuple[pd.DataFrame, list[Rejection]]:
    """A recorded day's validated universe with its forecast from the recording's days before
    it only (what `pool_daily_metrics` stores; the backtest replays the same frames)."""
    try:
        universe, rejections = recording.universe_for(day)
    except HistoryError as exc:
        raise PoolDataError(str(exc)) from None
    forecast = _window(recording, recording.start).forecast(day, recording.history)
    return with_forecast(universe, forecast), rejections


def ingest_history_day(engine: sa.Engine, day: dt.date, recording: PoolHistory) -> IngestResult:
    """Store a recorded day; its forecast reads only the recording's days before it."""
    frame, rejections = history_day_frame(recording, day)
    stored = _swap_in(engine, day, frame, rejections, PoolSource.HISTORY)
    return IngestResult(day, PoolSource.HISTORY, frame, rejections, stored)


def _swap_in(
    engine: sa.Engine,
    day: dt.date,
    frame: pd.DataFrame,
    rejections: Sequence[Rejection],
    source: PoolSource,
) -> int:
    """Replace the stored day by `frame` only if it passes the day checks (staged swap).

    The checks run on the new rows inside the replacing transaction, against the accepted days
    stored before `day`; a refusal raises PoolDataError and leaves the stored day, its
    rejections and everything computed from it (the day's allocation) exactly as they were.
    """

    def admit(conn: sa.Connection) -> None:
        problems = [p for found in day_problems(day, frame, conn).values() for p in found]
        if problems:
            kept = conn.execute(
                sa.select(sa.func.count()).where(pool_daily_metrics.c.metric_date == day)
            ).scalar_one()
            raise PoolDataError(
                f"{source} data for {day} refused, the stored day ({kept} pools) is kept: "
                + "; ".join(problems[:5])
                + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            )

    return replace_pool_day(engine, day, frame, rejections, source=source, admit=admit)


def ingest_defillama_day(
    engine: sa.Engine,
    day: dt.date,
    fetch_today: Callable[[], tuple[pd.DataFrame, list[Rejection]]],
    *,
    today: dt.date | None = None,
) -> IngestResult:
    """Store today's live snapshot; a past day is served from what was stored on that day."""
    today = today or dt.datetime.now(dt.UTC).date()
    if day != today:
        stored = load_pool_day(engine, day)
        if stored.empty:
            raise PoolDataError(
                f"the DefiLlama /pools endpoint only serves today ({today}); no snapshot of {day} is "
                f"stored. Import past days with `allocator pools import-history`."
            )
        return IngestResult(
            day, PoolSource.DEFILLAMA, stored, [], len(stored), reused_stored_day=True
        )
    universe, rejections = fetch_today()
    frame = with_forecast(universe, stored_forecast(engine, day))
    stored_rows = _swap_in(engine, day, frame, rejections, PoolSource.DEFILLAMA)
    return IngestResult(day, PoolSource.DEFILLAMA, frame, rejections, stored_rows)


def stored_forecast(engine: sa.Engine, day: dt.date) -> pd.DataFrame:
    """The forecast for `day` (pool + FORECAST_COLUMNS) from the `LOOKBACK_DAYS` stored days
    before it: each day's packed row (`day_series`), or its rows when it has none (a day
    stored before the packed rows existed). The numbers are those of `robust.forecast_for_day`
    on `load_pool_history`'s frame: `ForecastWindow` builds the same matrices."""
    first = day - dt.timedelta(days=LOOKBACK_DAYS)
    window = ForecastWindow(first)
    packed = load_day_series(engine, first=first, before=day)
    for stored_day, series in packed.items():
        window.add_day(stored_day, series.pools, series.values)

    def rows(first_day: dt.date, last_day: dt.date) -> pd.DataFrame:
        span = (last_day - first_day).days + 1
        wanted = [first_day + dt.timedelta(days=k) for k in range(span)]
        return load_pool_history(
            engine,
            before=last_day + dt.timedelta(days=1),
            days=span,
            only_days=[d for d in wanted if d not in packed],
        )

    return window.forecast(day, rows)


@dataclass(frozen=True)
class ImportSummary:
    """What `import_history` did: pools fetched, days and rows written, rows it rejected."""

    pools_requested: int
    pools_with_history: int
    days_written: int
    rows_written: int
    first_day: dt.date | None
    last_day: dt.date | None
    rejections: tuple[tuple[str, Rejection], ...] = field(default=())


def import_history(
    client: DefiLlamaClient,
    engine: sa.Engine,
    *,
    pool_ids: Sequence[str],
    start: dt.date,
    end: dt.date,
    progress: Callable[[int, int, str], None] | None = None,
    universe: pd.DataFrame | None = None,
) -> ImportSummary:
    """Fetch `/chart` for each pool and store days start..end in `pool_daily_metrics`.

    Every chart is fetched before anything is written, so an API failure leaves the database
    untouched; then each day is written in its own transaction, replacing only these pools'
    rows of that day, so re-running is idempotent and a day's other pools (a full `/pools`
    snapshot stored by `fetch`) are kept.
    """
    fetched = fetch_history(
        client, pool_ids=pool_ids, start=start, end=end, progress=progress, universe=universe
    )
    days = fetched.days
    ingested_at = dt.datetime.now(dt.UTC)
    rows = 0
    for day, frame in days.items():
        rows += upsert_pool_rows(
            engine, day, frame, source=PoolSource.DEFILLAMA_CHART, ingested_at=ingested_at
        )
    return ImportSummary(
        pools_requested=len(pool_ids),
        pools_with_history=fetched.pools_with_history,
        days_written=len(days),
        rows_written=rows,
        first_day=min(days) if days else None,
        last_day=max(days) if days else None,
        rejections=fetched.rejections,
    )


ROW_CHECKS = ("duplicates", "finite_values", "row_count")
POOL_CHECKS = (*ROW_CHECKS, "packed_row")


def day_problems(day: dt.date, frame: pd.DataFrame, conn: sa.Connection) -> dict[str, list[str]]:
    """Problems of a day's rows by check: duplicate pools, non-finite values, a row count far
    from the median of the last accepted full days (`pool_admission`). One definition for the
    staged swap (new rows, before they are stored) and the asset check (stored rows)."""
    out: dict[str, list[str]] = {name: [] for name in ROW_CHECKS}
    dupes = frame["pool"][frame["pool"].duplicated()].unique().tolist()
    out["duplicates"] += [f"{day}: pool {p} appears more than once" for p in dupes]
    tvl = frame["tvlUsd"].to_numpy(dtype=float)
    for pool in frame["pool"][~np.isfinite(tvl) | (tvl <= 0)].tolist():
        out["finite_values"].append(f"{day}: pool {pool} has a TVL that is not finite and positive")
    for column in (
        "apy",
        "apyBase",
        "apyReward",
        "apy_forecast",
        "apy_base_forecast",
        "apy_reward_forecast",
        "tvl_forecast",
    ):
        if column not in frame.columns:
            continue
        values = frame[column].to_numpy(dtype=float)
        bad = np.isinf(values)  # NaN is a null (no APY, no forecast yet); infinity never is
        out["finite_values"] += [
            f"{day}: pool {p} has {column} = inf" for p in frame["pool"][bad].tolist()
        ]
    counts = accepted_day_counts(conn, before=day, window_days=REFERENCE_WINDOW_DAYS)
    problem = row_count_problem(day, len(frame), counts)
    if problem is not None:
        out["row_count"].append(problem)
    return out


def check_pool_day(engine: sa.Engine, day: dt.date) -> dict[str, list[str]]:
    """Problems of a stored pool day, by check (`day_problems`, which reads only the ids and
    the numbers), and whether the day's packed row (`day_series`) still equals those rows."""
    frame = load_pool_values(engine, day)
    with engine.connect() as conn:
        found = day_problems(day, frame, conn)
        packed = load_one_day_series(conn, day)
    pools = frame["pool"].tolist()
    order = sorted(range(len(pools)), key=pools.__getitem__)  # the packed row's order
    values = {name: frame[name].to_numpy(dtype=float)[order] for name in SERIES_COLUMNS}
    found["packed_row"] = series_problems(day, [pools[k] for k in order], values, packed)
    return found
