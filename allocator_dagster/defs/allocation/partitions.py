"""The allocation graph's partitions, run tags and concurrency pool (defined here only)."""

from __future__ import annotations

from dagster import DagsterInstance, DailyPartitionsDefinition

from allocator_dagster.defs.partitions import configured_first_day

# end_offset=1: today's partition exists, so today's allocation can run (and sensors can force it)
daily_partitions = DailyPartitionsDefinition(
    start_date=configured_first_day(), timezone="UTC", end_offset=1
)
GROUP = "allocation"

# Tags of a run the list-change sensor forces.
FORCE_TAG = "allocator/forced_reallocation"
FORCE_REASONS_TAG = "allocator/force_reasons"

# The chain's concurrency pool. dagster.yaml limits every pool to one run at a time (run
# granularity), so runs that contain the chain queue behind each other however they were launched
# (schedule, sensor, UI materialisation or backfill): two runs must never write the same day.
CHAIN_POOL = "allocator_chain"
CHAIN_POOL_LIMIT = 1


def ensure_chain_pool(instance: DagsterInstance) -> bool:
    """Give the chain's pool its limit of one run if the instance has none yet (True: set now).

    Dagster creates a pool's default limit only when it first sees a queued run in it, and lets
    the runs of that first pass through unchecked; setting the limit beforehand closes that gap.
    A limit the operator set explicitly is left as it is.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return False
    explicit = {p.name for p in storage.get_pool_limits() if not p.from_default}
    if CHAIN_POOL in explicit:
        return False
    storage.set_concurrency_slots(CHAIN_POOL, CHAIN_POOL_LIMIT)
    return True
