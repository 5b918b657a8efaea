"""The allocation graph's job: pool data, then the allocation chain, for one day or a range."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from allocator_dagster.defs.allocation.partitions import GROUP, daily_partitions

daily_allocation_job = define_asset_job(
    "daily_allocation_job",
    selection=AssetSelection.groups(GROUP),
    partitions_def=daily_partitions,
    description="pool_daily_metrics -> balances -> allocation_parameters -> solver_output -> "
    "asset_allocations -> rebalance_plan",
)
