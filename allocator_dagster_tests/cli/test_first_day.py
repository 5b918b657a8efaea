"""The first day `allocator run` records on an instance without ALLOCATOR_FIRST_DAY."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from allocator_dagster.cli.first_day import record_first_day, settle_first_day
from allocator_dagster.defs.partitions import first_day, recorded_first_day


def test_the_quickstart_records_the_first_day_it_filled(tmp_path: Path) -> None:
    """Without ALLOCATOR_FIRST_DAY the partitions start on the first day filled on the instance:
    a `dg dev` on the quickstart shows no wall of missing days (it only moves earlier)."""
    assert recorded_first_day(str(tmp_path)) is None
    assert record_first_day(tmp_path, dt.date(2026, 11, 18)) == dt.date(2026, 11, 18)
    assert record_first_day(tmp_path, dt.date(2026, 11, 25)) == dt.date(2026, 11, 18)
    assert record_first_day(tmp_path, dt.date(2026, 11, 2)) == dt.date(2026, 11, 2)
    assert first_day(None, recorded_first_day(str(tmp_path))) == "2026-11-02"
    assert first_day("2026-01-01", recorded_first_day(str(tmp_path))) == "2026-01-01"
    (tmp_path / "allocator_first_day").write_text("yesterday")
    with pytest.raises(ValueError, match=r"allocator_first_day: 'yesterday' is not a date"):
        recorded_first_day(str(tmp_path))


def test_a_launched_backfill_keeps_its_days_in_the_calendar(tmp_path: Path) -> None:
    record_first_day(tmp_path, dt.date(2026, 6, 1))
    record_first_day(tmp_path, dt.date(2026, 5, 3))  # this invocation's range
    assert settle_first_day(tmp_path, "2026-06-01", launched=True) == "2026-05-03"
    assert (tmp_path / "allocator_first_day").read_text() == "2026-05-03\n"
    assert settle_first_day(tmp_path, "2026-06-01", launched=False) == "2026-06-01"
    assert (tmp_path / "allocator_first_day").read_text() == "2026-06-01\n"
    assert settle_first_day(tmp_path, None, launched=False) is None
    assert not (tmp_path / "allocator_first_day").exists()
