"""The list-change sensor: icebox, blacklist and protocol changes reach the portfolio the same day."""

import datetime as dt
import json

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from allocator_dagster.defs.allocation.assets import CHAIN_KEYS
from allocator_dagster.defs.allocation.partitions import FORCE_REASONS_TAG, FORCE_TAG
from allocator_dagster.defs.resources import DatabaseResource
from allocator_dagster.dynamic_lists import forced_reasons, held_pools_from_details
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.lists import changes_after, held_pool_details
from allocator_dagster.storage.pool_days import stored_pool_days


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@sensor(
    name="list_change_sensor",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    asset_selection=[AssetKey("pool_daily_metrics"), *(AssetKey(k) for k in CHAIN_KEYS)],
    description="Forces today's reallocation when a list change makes a held pool ineligible.",
)
def list_change_sensor(context: SensorEvaluationContext, database: DatabaseResource):
    """Reads the change history after the cursor; every change is looked at exactly once."""
    cursor = int(context.cursor or 0)
    engine = database.engine()
    today = today_utc()
    with engine.connect() as conn:
        changes = changes_after(conn, cursor)
        if not changes:
            return SkipReason(f"no list change after #{cursor}")
        in_force = store.allocation_in_force(conn, today)
        held = (
            held_pools_from_details(held_pool_details(conn, in_force.allocation_date))
            if in_force
            else []
        )
    new_cursor = str(changes[-1].change_id)
    reasons = forced_reasons(changes, held)
    if not reasons:
        return SensorResult(
            skip_reason=f"changes #{changes[0].change_id}-#{changes[-1].change_id} touch no held pool",
            cursor=new_cursor,
        )
    keys = [AssetKey(k) for k in CHAIN_KEYS]
    if today not in set(stored_pool_days(engine)):
        keys.insert(0, AssetKey("pool_daily_metrics"))
    request = RunRequest(
        run_key=f"list-changes-{changes[0].change_id}-{changes[-1].change_id}",
        partition_key=today.isoformat(),
        asset_selection=keys,
        run_config={
            "ops": {
                "allocation_chain": {
                    "config": {
                        "snapshot": "fresh",
                        "force_reallocation": True,
                        "force_reasons": reasons,
                    }
                }
            }
        },
        tags={FORCE_TAG: "true", FORCE_REASONS_TAG: json.dumps(reasons)[:4000]},
    )
    context.log.info(f"forcing {today}: " + "; ".join(reasons))
    return SensorResult(run_requests=[request], cursor=new_cursor)
