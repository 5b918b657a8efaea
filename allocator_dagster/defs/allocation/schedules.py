"""The daily schedule: pool data, then the allocation chain, for today's partition."""

from __future__ import annotations

from dagster import build_schedule_from_partitioned_job

from allocator_dagster.defs.allocation.jobs import daily_allocation_job
from allocator_dagster.defs.partitions import configured_schedules_status

# 00:30 UTC: today's partition (end_offset=1), after the day's pool snapshot is available;
# running from the start in production (see configured_schedules_status)
daily_allocation_schedule = build_schedule_from_partitioned_job(
    daily_allocation_job,
    hour_of_day=0,
    minute_of_hour=30,
    default_status=configured_schedules_status(),
)
