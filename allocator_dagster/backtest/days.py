"""Where a backtest's days come from: a recording, the generated sample, or the stored days.

Each gives, for a day, the frame `pool_daily_metrics` holds for it (the validated universe and
the forecast from earlier days only), through the same functions the pool ingestion uses, and
the lists a run starts with when none are given.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from allocator_dagster.backtest.engine import BacktestError, FrameOf
from allocator_dagster.model import pool_tokens
from allocator_dagster.parameters import DynamicLists
from allocator_dagster.pool_ingestion import (
    PoolDataError,
    history_day_frame,
    sample_day_frame,
    sample_universe,
)
from allocator_dagster.sources.history import HistoryError, open_history
from allocator_dagster.storage.pool_reads import load_pool_day

SAMPLE_POOLS = 1200  # the sample deployment's size (PoolSourceResource.sample_pools)


def history_days(path: str | Path) -> tuple[FrameOf, list[str]]:
    """Days of a recording (CSV, CSV.gz or a folder of /pools saves), and the list each
    loaded day's rejected records are added to (each naming file, line and field), as a live
    fetch rejects them."""
    try:
        recording = open_history(path)
    except HistoryError as exc:
        raise BacktestError(str(exc)) from None
    rejected: list[str] = []

    def frame_of(day: dt.date) -> pd.DataFrame:
        try:
            frame, rejections = history_day_frame(recording, day)
        except PoolDataError as exc:
            raise BacktestError(str(exc)) from None
        rejected.extend(f"{day}: {r.reason}" for r in rejections)
        return frame

    return frame_of, rejected


def sample_days(seed: int, n_pools: int = SAMPLE_POOLS) -> tuple[FrameOf, DynamicLists]:
    """Days of the generated sample and its default lists."""
    source = sample_universe(seed, n_pools)

    def frame_of(day: dt.date) -> pd.DataFrame:
        if day < source.start:
            raise BacktestError(f"{day}: the sample starts on {source.start}")
        return sample_day_frame(source, day)[0]

    return frame_of, source.default_lists()


def stored_days(engine: sa.Engine) -> FrameOf:
    """Days stored by `pool_daily_metrics` (with the forecast stored with them)."""

    def frame_of(day: dt.date) -> pd.DataFrame:
        frame = load_pool_day(engine, day)
        if frame.empty:
            raise BacktestError(
                f"no pool metrics stored for {day}: materialise pool_daily_metrics for it first"
            )
        return frame

    return frame_of


def approve_everything(frames: list[pd.DataFrame] | tuple[pd.DataFrame, ...]) -> DynamicLists:
    """Lists approving every token (symbol part) and protocol the frames hold: a recording's
    default when no lists are given (the lists of a live deployment start empty)."""
    tokens: set[str] = set()
    protocols: set[str] = set()
    for frame in frames:
        for symbol in set(frame["symbol"].astype(str)):
            tokens.update(pool_tokens(symbol, None)[0])
        protocols.update(frame["project"].astype(str))
    return DynamicLists(
        approved_tokens=tuple(sorted(tokens)), approved_protocols=tuple(sorted(protocols))
    )
