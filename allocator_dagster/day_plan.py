"""The rebalance plan of a stored day, without Dagster: the one builder the `rebalance_plan` asset,
its check and `allocator plan show` share.

It reads the day's start balances, its stored allocation (with the payout recorded beside it) and
its pool data, and hands them to `plan.build_plan`; a held or infeasible day gets an empty plan
saying why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from allocator_dagster.allocation_report import Decision
from allocator_dagster.day_payouts import DayInputError, recorded_payout
from allocator_dagster.model import Holdings
from allocator_dagster.payouts import Payout
from allocator_dagster.plan import Plan, PoolInfo, build_plan, empty_plan, plan_violations
from allocator_dagster.pool_labels import labels_from_universe
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.pool_reads import load_pool_day


@dataclass(frozen=True)
class DayPlan:
    """A day's plan with what it was built from, so its identities can be proven."""

    day: dt.date
    plan: Plan
    holdings: Holdings
    allocation: dict[str, Decimal]  # what the plan must reach (the holdings on an empty plan)
    payout: Payout | None
    labels: dict[str, str]  # readable pool labels (symbol · project · chain · poolMeta · id)

    def violations(self) -> list[str]:
        return plan_violations(self.plan, self.holdings, self.allocation, self.payout)


def day_plan(engine: sa.Engine, day: dt.date) -> DayPlan:
    """The plan of a stored day; a day without balances or an allocation raises DayInputError
    naming what to materialise."""
    with engine.connect() as conn:
        holdings = store.read_holdings(conn, day)
        stored = store.read_allocation(conn, day)
        details = store.read_detail_pools(conn, day)
    if holdings is None or stored is None:
        missing = "balances" if holdings is None else "allocation"
        raise DayInputError(
            f"{day} has no {missing}: materialise asset_allocations for {day} first"
        )
    payout = recorded_payout(stored.report)
    universe = load_pool_day(engine, day)
    reasons = "; ".join(str(r) for r in stored.report.get("reasons") or [])
    if not stored.status.has_solution or stored.decision == Decision.HOLD:
        plan = empty_plan(holdings, f"{stored.decision} ({stored.status}): {reasons}", payout)
        target = holdings.held()
    else:
        pools = {p: PoolInfo(ch, pr, g, c) for p, (ch, pr, g, c) in details.items()}
        for row in universe.itertuples():  # pools left without a detail row (exits)
            pools.setdefault(str(row.pool), PoolInfo(str(row.chain), str(row.project)))
        plan = build_plan(
            holdings,
            stored.amounts,
            pools,
            forced=stored.decision == Decision.FORCED,
            yield_only=stored.decision == Decision.YIELD_ONLY,
            payout=payout,
        )
        target = dict(stored.amounts)
    labels = labels_from_universe(universe, {o.pool for o in plan.orders})
    return DayPlan(day, plan, holdings, target, payout, labels)
