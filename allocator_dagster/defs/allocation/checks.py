"""Asset checks on the stored allocations: blocking, so a wrong answer does not flow on."""

import datetime as dt

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from allocator_dagster.daily_allocation import check_stored_day
from allocator_dagster.defs.resources import DatabaseResource
from allocator_dagster.storage import allocations as store


def _run_days(context: AssetCheckExecutionContext) -> list[dt.date]:
    """The days of the run: one partition or a partition range, from the run's tags."""
    tags = context.op_execution_context.run.tags
    if "dagster/partition" in tags:
        return [dt.date.fromisoformat(tags["dagster/partition"])]
    first = tags.get("dagster/asset_partition_range_start")
    last = tags.get("dagster/asset_partition_range_end")
    if not (first and last):
        return []
    day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    days = []
    while day <= end:
        days.append(day)
        day += dt.timedelta(days=1)
    return days


def _result(
    category: str, context: AssetCheckExecutionContext, database: DatabaseResource
) -> AssetCheckResult:
    engine = database.engine()
    days = _run_days(context)
    problems = [p for day in days for p in check_stored_day(engine, day)[category]]
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "days_checked": len(days),
            "problems": len(problems),
            "details": MetadataValue.md("\n".join(f"- {p}" for p in problems[:30]) or "none"),
        },
    )


@asset_check(
    asset="asset_allocations",
    blocking=True,
    description="The weights of each stored allocation sum to 1 and the capital is fully placed.",
)
def weights_sum_to_one(
    context: AssetCheckExecutionContext, database: DatabaseResource
) -> AssetCheckResult:
    return _result("weights", context, database)


@asset_check(
    asset="asset_allocations",
    blocking=True,
    description="Every limit of MODEL.md holds on the stored allocation (caps, groups, min_pools, min_position_usd).",
)
def limits_hold(
    context: AssetCheckExecutionContext, database: DatabaseResource
) -> AssetCheckResult:
    return _result("limits", context, database)


@asset_check(
    asset="asset_allocations",
    blocking=True,
    description="No pool with a blacklisted or iceboxed token or an unapproved protocol holds money.",
)
def no_excluded_pools(
    context: AssetCheckExecutionContext, database: DatabaseResource
) -> AssetCheckResult:
    return _result("eligibility", context, database)


@asset_check(
    asset="asset_allocations",
    blocking=True,
    description="Detail rows add up to the allocation total, which equals the day's balances.",
)
def details_add_up(
    context: AssetCheckExecutionContext, database: DatabaseResource
) -> AssetCheckResult:
    return _result("details", context, database)


@asset_check(
    asset="asset_allocations",
    blocking=True,
    description="In reproduce mode, a re-run day gives the result hash it had before.",
)
def reproduced_hash_matches(
    context: AssetCheckExecutionContext, database: DatabaseResource
) -> AssetCheckResult:
    engine = database.engine()
    mismatches, reproduced = [], 0
    with engine.connect() as conn:
        for day in _run_days(context):
            stored = store.read_allocation(conn, day)
            info = (stored.report.get("reproduction") if stored else None) or {}
            if info.get("policy") != "reproduce" or info.get("matched") is None:
                continue
            reproduced += 1
            if not info["matched"]:
                mismatches.append(
                    f"{day}: {info.get('previous_hash', '')[:12]} -> {stored.result_hash[:12]}"
                )
    return AssetCheckResult(
        passed=not mismatches,
        metadata={
            "days_reproduced": reproduced,
            "mismatches": MetadataValue.md("\n".join(f"- {m}" for m in mismatches) or "none"),
        },
    )


ALLOCATION_CHECKS = [
    weights_sum_to_one,
    limits_hold,
    no_excluded_pools,
    details_add_up,
    reproduced_hash_matches,
]
