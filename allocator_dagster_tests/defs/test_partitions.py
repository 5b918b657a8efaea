"""The first partition: ALLOCATOR_FIRST_DAY, else the day `allocator run` recorded in DAGSTER_HOME;
a bad value is a clear error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from allocator_dagster.defs.partitions import DEFAULT_FIRST_DAY, first_day


def test_first_day_defaults_and_normalises() -> None:
    assert first_day(None) == first_day("  ") == DEFAULT_FIRST_DAY
    assert first_day(" 2026-11-01 ") == "2026-11-01"
    with pytest.raises(ValueError, match=r"ALLOCATOR_FIRST_DAY='11/01/2026' is not a date"):
        first_day("11/01/2026")


def test_both_graphs_start_on_the_configured_day() -> None:
    code = (
        "from allocator_dagster.defs.allocation.partitions import daily_partitions as a;"
        "from allocator_dagster.defs.profit_split.partitions import PARTITIONS as p;"
        "print(a.get_first_partition_key(), p.get_first_partition_key())"
    )
    env = {**os.environ, "ALLOCATOR_FIRST_DAY": "2026-11-01"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2026-11-01", "2026-11-01"]


def test_without_the_variable_both_graphs_start_on_the_day_allocator_run_recorded(
    tmp_path,
) -> None:
    """The quickstart's `dg dev`: DAGSTER_HOME holds the first day `allocator run` filled."""
    (tmp_path / "allocator_first_day").write_text("2026-11-18\n")
    code = (
        "from allocator_dagster.defs.allocation.partitions import daily_partitions as a;"
        "from allocator_dagster.defs.profit_split.partitions import PARTITIONS as p;"
        "print(a.get_first_partition_key(), p.get_first_partition_key())"
    )
    env = {k: v for k, v in os.environ.items() if k != "ALLOCATOR_FIRST_DAY"}
    env["DAGSTER_HOME"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2026-11-18", "2026-11-18"]
    env["ALLOCATOR_FIRST_DAY"] = "2026-01-01"  # a deployment's setting wins
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["2026-01-01", "2026-01-01"]


def test_schedules_run_from_the_start_in_production_only() -> None:
    from dagster import DefaultScheduleStatus

    from allocator_dagster.defs.partitions import schedules_status

    assert schedules_status(None, None) == DefaultScheduleStatus.STOPPED  # the quickstart
    assert schedules_status(None, "sample") == DefaultScheduleStatus.STOPPED
    assert schedules_status(None, "defillama") == DefaultScheduleStatus.RUNNING  # production
    assert schedules_status("stopped", "defillama") == DefaultScheduleStatus.STOPPED
    assert schedules_status(" Running ", "sample") == DefaultScheduleStatus.RUNNING
    with pytest.raises(ValueError, match=r"ALLOCATOR_SCHEDULES='on': use running or stopped"):
        schedules_status("on", None)

    code = (
        "from allocator_dagster.definitions import build_definitions;"
        "d = build_definitions();"
        "print(*sorted(f'{s.name}={s.default_status.value}' for s in d.schedules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "ALLOCATOR_SCHEDULES"}
    env["ALLOCATOR_POOL_SOURCE"] = "defillama"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "daily_allocation_job_schedule=RUNNING",
        "profit_split_daily=RUNNING",
    ]
