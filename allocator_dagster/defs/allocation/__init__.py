"""The allocation domain: assets, checks, the daily schedule and the list-change sensor."""

from dagster import Definitions

from allocator_dagster.defs.allocation.assets import allocation_chain, pool_daily_metrics
from allocator_dagster.defs.allocation.checks import ALLOCATION_CHECKS, POOL_CHECKS
from allocator_dagster.defs.allocation.schedules import (
    daily_allocation_job,
    daily_allocation_schedule,
)
from allocator_dagster.defs.allocation.sensors import list_change_sensor

defs = Definitions(
    assets=[pool_daily_metrics, allocation_chain],
    asset_checks=[*POOL_CHECKS, *ALLOCATION_CHECKS],
    jobs=[daily_allocation_job],
    schedules=[daily_allocation_schedule],
    sensors=[list_change_sensor],
)
