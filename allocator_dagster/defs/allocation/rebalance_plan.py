"""The `rebalance_plan` asset: the day's orders for an executor (a person with a multisig, a bot).

After `asset_allocations`, same daily partitions, in the allocation job and its backfills. Each
day's partition records its plan (built by `day_plan`, the builder `allocator plan show` uses)
as a table with readable pool labels and as JSON; a blocking check proves its identities.
"""

from typing import TYPE_CHECKING

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    asset_check,
)

if TYPE_CHECKING:  # what Dagster accepts as a metadata value (it has no public name)
    from dagster._core.definitions.metadata import RawMetadataValue

from allocator_dagster.day_payouts import DayInputError
from allocator_dagster.day_plan import DayPlan, day_plan
from allocator_dagster.defs.allocation.partitions import GROUP, daily_partitions
from allocator_dagster.defs.partitions import partition_days
from allocator_dagster.defs.resources import DatabaseResource
from allocator_dagster.plan import PlanError
from allocator_dagster.runtime import frozen_heap

PLAN_TABLE = TableSchema(
    columns=[
        TableColumn("chain", "string"),
        TableColumn("action", "string", description="withdraw | deposit"),
        TableColumn("pool", "string", description="symbol · project · chain · poolMeta · short id"),
        TableColumn("protocol", "string"),
        TableColumn("amount_usd", "string", description="exact cents"),
        TableColumn("gas_usd", "string", description="estimated"),
        TableColumn("conversion_usd", "string", description="estimated"),
        TableColumn(
            "reason", "string", description="rebalance | forced exit | placing yield | payout"
        ),
        TableColumn("recipient", "string", description="a payout's profit-split category"),
    ]
)


def plan_metadata(plan: DayPlan) -> dict[str, "RawMetadataValue"]:
    """What a day's partition shows: the orders as a table, the cash flow, why it is empty."""
    p = plan.plan
    rows = [
        TableRecord(
            {
                "chain": o.chain,
                "action": str(o.action),
                "pool": plan.labels.get(o.pool, o.pool),
                "protocol": o.protocol,
                "amount_usd": str(o.amount_usd),
                "gas_usd": str(o.gas_usd),
                "conversion_usd": str(o.conversion_usd),
                "reason": str(o.reason),
                "recipient": o.recipient,
            }
        )
        for o in p.orders
    ]
    return {
        "day": plan.day.isoformat(),
        "orders": MetadataValue.table(rows, PLAN_TABLE),
        "order_count": len(p.orders),
        "why_no_rebalance": p.why or "none",
        "cash_flow": (
            f"idle {p.idle_start_usd:,.2f} + withdrawn {p.withdrawn_usd:,.2f} - deposited "
            f"{p.deposited_usd:,.2f} = {p.idle_end_usd:,.2f} USD; the day's realised profit "
            f"{p.profit_usd:,.2f} USD lands as idle cash; {p.paid_out_usd:,.2f} USD paid out of it"
        ),
        "paid_out_usd": str(p.paid_out_usd),
        "plan": MetadataValue.json(p.as_dict(plan.day)),
    }


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name=GROUP,
    deps=["asset_allocations"],
    kinds={"python"},
    description="The orders that take the day's holdings exactly to its allocation: per chain, "
    "withdrawals before deposits, exact cents, estimated gas and conversion, the reason; then "
    "the payouts of the day's profit from the idle cash. A held or infeasible day says why.",
)
def rebalance_plan(context: AssetExecutionContext, database: DatabaseResource) -> MaterializeResult:
    engine = database.engine()
    days = partition_days(context)
    orders = 0
    with frozen_heap():
        for day in days:
            try:
                plan = day_plan(engine, day)
            except (DayInputError, PlanError) as exc:
                raise Failure(description=f"{day}: {exc}") from None
            orders += len(plan.plan.orders)
            context.add_asset_metadata(plan_metadata(plan), partition_key=day.isoformat())
    return MaterializeResult(
        metadata={
            "run_days": len(days),
            "run_first_day": str(days[0]),
            "run_last_day": str(days[-1]),
            "run_orders": orders,
        }
    )


@asset_check(
    asset=rebalance_plan,
    blocking=True,
    description="Each day's plan reaches its allocation to the cent per pool, withdraws before it "
    "deposits on every chain, pays out what the profit split pays from the idle cash, and its "
    "cash flow balances with the idle cash.",
)
def plan_identities_hold(
    context: AssetCheckExecutionContext, database: DatabaseResource
) -> AssetCheckResult:
    engine = database.engine()
    days = partition_days(context)
    problems = []
    for day in days:
        try:
            problems += [f"{day}: {p}" for p in day_plan(engine, day).violations()]
        except (DayInputError, PlanError) as exc:
            problems.append(f"{day}: {exc}")
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "days_checked": len(days),
            "problems": len(problems),
            "details": MetadataValue.md("\n".join(f"- {p}" for p in problems[:30]) or "none"),
        },
    )
