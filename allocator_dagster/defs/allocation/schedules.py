"""The daily schedule: pool data, then the allocation chain, for today's partition."""

from __future__ import annotations

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from allocator_dagster.defs.allocation.assets import daily_partitions

daily_allocation_job = define_asset_job(
    "daily_allocation_job",
    selection=AssetSelection.groups("allocation"),
    partitions_def=daily_partitions,
    description="pool_daily_metrics -> balances -> allocation_parameters -> solver_output -> asset_allocations",
)

# 00:30 UTC: today's partition (end_offset=1), after the day's pool snapshot is available
daily_allocation_schedule = build_schedule_from_partitioned_job(
    daily_allocation_job, hour_of_day=0, minute_of_hour=30
)
