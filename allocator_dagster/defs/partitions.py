"""The calendar both graphs share: the first day, and the days a run covers."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    DefaultScheduleStatus,
    Failure,
)

FIRST_DAY_ENV = "ALLOCATOR_FIRST_DAY"
DEFAULT_FIRST_DAY = "2025-01-01"
# In DAGSTER_HOME: the first day `allocator run` has filled on that instance (the quickstart's),
# so `dg dev` on it shows the filled range, not a wall of missing days before it.
RECORDED_FIRST_DAY_FILE = "allocator_first_day"


def first_day(value: str | None, recorded: str | None = None) -> str:
    """The first daily partition (ISO date): ALLOCATOR_FIRST_DAY when set (a deployment's fixed
    calendar), else the day `allocator run` recorded on the instance, else the default."""
    if value is None or not value.strip():
        return recorded or DEFAULT_FIRST_DAY
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError(
            f"{FIRST_DAY_ENV}={value!r} is not a date: use YYYY-MM-DD, e.g. {DEFAULT_FIRST_DAY}"
        ) from None


def recorded_first_day(home: str | None) -> str | None:
    """The first day recorded in DAGSTER_HOME by `allocator run`, if any."""
    if not home:
        return None
    path = Path(home) / RECORDED_FIRST_DAY_FILE
    try:
        text = path.read_text().strip()
    except OSError:  # none recorded
        return None
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(
            f"{path}: {text[:40]!r} is not a date (YYYY-MM-DD); delete the file or set "
            f"{FIRST_DAY_ENV}"
        ) from None


def configured_first_day() -> str:
    """The first daily partition of both graphs, read when their partitions are defined."""
    return first_day(
        os.environ.get(FIRST_DAY_ENV), recorded_first_day(os.environ.get("DAGSTER_HOME"))
    )


SCHEDULES_ENV = "ALLOCATOR_SCHEDULES"


def schedules_status(value: str | None, pool_source: str | None) -> DefaultScheduleStatus:
    """Whether the daily schedules start running: ALLOCATOR_SCHEDULES (running | stopped) when
    set; else running on live data (ALLOCATOR_POOL_SOURCE=defillama: a production deployment
    decides every day without anyone turning it on), stopped on the sample or a recording."""
    choice = (value or "").strip().lower()
    if choice not in ("", "running", "stopped"):
        raise ValueError(f"{SCHEDULES_ENV}={value!r}: use running or stopped")
    if not choice:
        choice = "running" if (pool_source or "").strip() == "defillama" else "stopped"
    return DefaultScheduleStatus.RUNNING if choice == "running" else DefaultScheduleStatus.STOPPED


def configured_schedules_status() -> DefaultScheduleStatus:
    """The schedules' default status from the environment (read when they are defined)."""
    return schedules_status(os.environ.get(SCHEDULES_ENV), os.environ.get("ALLOCATOR_POOL_SOURCE"))


def partition_days(context: AssetExecutionContext | AssetCheckExecutionContext) -> list[dt.date]:
    """The days of the run, in date order: its one partition or its partition range.

    Read from Dagster's `partition_key_range`, which a check that is not itself partitioned
    also has when its run targets partitions of the asset (`partition_keys` needs the run's
    partitions definition, which a checks-only run lacks). Every asset here is
    daily-partitioned, so a run without a partition has no day to work on: an error that
    says so, not an empty loop.
    """
    if not (context.has_partition_key or context.has_partition_key_range):
        raise Failure("the run names no partition, so there is no day to work on")
    keys = context.partition_key_range
    day, last = dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end)
    days = []
    while day <= last:
        days.append(day)
        day += dt.timedelta(days=1)
    return days


def partition_day(context: AssetExecutionContext | AssetCheckExecutionContext) -> dt.date:
    """The one day of a single-partition run."""
    days = partition_days(context)
    if len(days) != 1:
        raise Failure(f"expected one partition, the run covers {len(days)} days")
    return days[0]
