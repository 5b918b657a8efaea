"""The daily schedule of the profit-split graph.

Day D's realised yield needs the ledger of D+1, which the allocation graph records early on
D+1, so yesterday's partition runs at 06:00 UTC; a missing ledger falls back to the configured
profit (and the distribution's metadata says so).
"""

from __future__ import annotations

import dagster as dg

from allocator_dagster.defs.partitions import configured_schedules_status
from allocator_dagster.defs.profit_split.jobs import profit_split_job

profit_split_schedule = dg.build_schedule_from_partitioned_job(
    profit_split_job,
    hour_of_day=6,
    minute_of_hour=0,
    name="profit_split_daily",
    description="Materialise yesterday's profit-split partition (running from the start in "
    "production, ALLOCATOR_SCHEDULES; else turned on in the UI).",
    default_status=configured_schedules_status(),
)
