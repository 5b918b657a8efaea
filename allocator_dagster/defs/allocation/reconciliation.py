"""The reconciliation's warning: imported balances that drifted from the previous day's plan.

Non-blocking: a drift (an unexecuted or partly executed plan, a hack, a depeg) is for a person to
look at, and the day's decision already starts from the observed holdings. The tolerance is the
allocation resource's (ALLOCATOR_DRIFT_TOLERANCE_USD / _PCT).
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from allocator_dagster.day_balances import OBSERVED_ROWS
from allocator_dagster.day_payouts import day_reconciliation
from allocator_dagster.defs.partitions import partition_days
from allocator_dagster.defs.resources import AllocationResource, DatabaseResource
from allocator_dagster.pool_labels import labels_from_universe
from allocator_dagster.reconciliation import beyond
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster.terminal import shown


@asset_check(
    asset="balances",
    blocking=False,
    description="Warns when a day's imported balances drift from what the previous day's plan "
    "expected by more than the tolerance, naming the pools (ALLOCATOR_BALANCES_SOURCE=ledger or etherscan).",
)
def balances_within_drift_tolerance(
    context: AssetCheckExecutionContext,
    database: DatabaseResource,
    allocation: AllocationResource,
) -> AssetCheckResult:
    engine = database.engine()
    settings = allocation.settings()
    tolerance = settings.drift_tolerance
    days = partition_days(context)
    if settings.balances_source not in OBSERVED_ROWS:
        return AssetCheckResult(
            passed=True,
            metadata={
                "days_checked": len(days),
                "days_reconciled": 0,
                "note": "paper balances are the plan's by construction: nothing to reconcile",
            },
        )
    lines, reconciled, drifted_days = [], 0, []
    for day in days:
        rec = day_reconciliation(engine, day)
        if rec is None:
            continue
        reconciled += 1
        over = beyond(rec, tolerance)
        if not over:
            continue
        drifted_days.append(str(day))
        labels = labels_from_universe(load_pool_day(engine, day), [p.pool for p in over])
        allowed = tolerance.allowed_usd(rec.expected.total_usd)
        lines.append(
            f"**{day}**: total drift {rec.total_drift_usd:+,.2f} USD; beyond {allowed:,.2f} USD:"
        )
        lines += [
            f"- {shown(labels.get(p.pool, p.pool))}: expected {p.expected_usd:,.2f}, observed "
            f"{p.observed_usd:,.2f}, drift {p.drift_usd:+,.2f} USD"
            for p in over
        ]
    if drifted_days:
        context.log.warning(
            f"balances drifted beyond {tolerance.describe()} on {', '.join(drifted_days)}"
        )
    return AssetCheckResult(
        passed=not drifted_days,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "days_checked": len(days),
            "days_reconciled": reconciled,
            "tolerance": tolerance.describe(),
            "drifted_days": ", ".join(drifted_days) or "none",
            "details": MetadataValue.md("\n".join(lines) or "none"),
        },
    )
