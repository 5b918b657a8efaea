"""The first day `allocator run` records in DAGSTER_HOME when no ALLOCATOR_FIRST_DAY fixes the
calendar (`defs/partitions.py` reads it when the definitions load): moved to a range's start
before its backfill is launched, and put back when none was."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from allocator_dagster.defs.partitions import RECORDED_FIRST_DAY_FILE, recorded_first_day


def record_first_day(home: Path, start: dt.date) -> dt.date:
    """Without ALLOCATOR_FIRST_DAY, the partitions start on the first day `allocator run` has
    filled on this instance: recorded in DAGSTER_HOME (only ever moved earlier), so this run and
    a later `dg dev` on the instance show the filled days and no wall of missing ones."""
    recorded = recorded_first_day(str(home))
    first = min(dt.date.fromisoformat(recorded), start) if recorded else start
    if recorded != first.isoformat():
        (home / RECORDED_FIRST_DAY_FILE).write_text(first.isoformat() + "\n")
    return first


def settle_first_day(home: Path, before: str | None, *, launched: bool) -> str | None:
    """After the runs: `record_first_day` moved the recorded first day to the range's start
    before the definitions loaded (a backfill's days must be partitions). An invocation that
    launched no backfill (stopped by an error or an interrupt before its first one) puts the
    record back as it was (none: no file), so the calendar does not start on days nothing was
    run for. Once a backfill is launched its days stay, even if its runs failed: the UI's
    Backfills page cannot show a backfill whose days start before the first partition, and the
    failed days are then shown failed. Returns the day recorded."""
    if launched:
        return recorded_first_day(str(home))
    path = home / RECORDED_FIRST_DAY_FILE
    if before is None:
        path.unlink(missing_ok=True)
    elif recorded_first_day(str(home)) != before:
        path.write_text(before + "\n")
    return before
