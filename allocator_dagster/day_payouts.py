"""A stored day's payout and the holdings the day after is expected to start with, without Dagster.

The chain's paper ledger (`paper_ledger`) executes a day's decision at its observed APYs; its
growth is the day's realised profit, which the split in force divides (`payout_split`,
`payouts.payout_of`) and which is recorded with the allocation (`recorded_payout`,
`day_payout`). The next day is expected to start from that ledger less the payout
(`expected_holdings`), and imported holdings are reconciled against it (`day_reconciliation`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from allocator_dagster.allocation_report import AllocationReport
from allocator_dagster.model import Holdings
from allocator_dagster.paper_trading import roll_forward
from allocator_dagster.payouts import Payout, pay_out, payout_of
from allocator_dagster.profit_split.distribution import distribution_moment
from allocator_dagster.profit_split.split import Split
from allocator_dagster.reconciliation import Reconciliation, reconcile
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import profit_split as split_store
from allocator_dagster.storage.balances import ETHERSCAN, IMPORTED, ledger_source
from allocator_dagster.storage.pool_reads import load_pool_day


class DayInputError(RuntimeError):
    """The day cannot run: a missing input, named with what to materialise first (the chain,
    the stored day's payout and plan raise it; it lives here, below `daily_allocation` and
    `day_decision`)."""


def expected_holdings(engine: sa.Engine, day: dt.date) -> Holdings | None:
    """What the previous day's plan expected `day` to start with: the paper ledger of the day
    before's allocation, at that day's observed APYs, less what it paid out (None without a
    start or a stored day)."""
    previous = day - dt.timedelta(days=1)
    with engine.connect() as conn:
        start = store.read_holdings(conn, previous)
        stored = store.read_allocation(conn, previous)
        costs = store.read_detail_costs(conn, previous)
    if start is None or stored is None:
        return None
    universe = load_pool_day(engine, previous)
    executed = stored.status.has_solution and stored.decision != "hold"
    gross = roll_forward(
        start,
        stored.amounts if executed else None,
        observed_apy(universe),
        gas_usd={p: g for p, (g, _) in costs.items()} if executed else None,
        conversion_usd={p: c for p, (_, c) in costs.items()} if executed else None,
    )
    payout = recorded_payout(stored.report)
    return gross if payout is None else pay_out(gross, payout.paid_usd)


def recorded_payout(report: dict) -> Payout | None:
    """The payout stored with a day's allocation (None: stored before payouts left the treasury)."""
    data = report.get("payout")
    return None if data is None else Payout.from_dict(data)


def day_payout(engine: sa.Engine, day: dt.date) -> Payout:
    """The payout recorded with the day's allocation; DayInputError says what to run first."""
    with engine.connect() as conn:
        stored = store.read_allocation(conn, day)
    if stored is None:
        raise DayInputError(
            f"{day} has no allocation, so no realised profit: materialise asset_allocations for "
            f"{day} first"
        )
    payout = recorded_payout(stored.report)
    if payout is None:
        raise DayInputError(
            f"the allocation of {day} was stored before payouts left the treasury and records no "
            "profit: re-run it with snapshot=fresh (with the days after it)"
        )
    return payout


def day_reconciliation(engine: sa.Engine, day: dt.date) -> Reconciliation | None:
    """The day's imported holdings against the day before's plan (None: nothing to compare)."""
    expected = expected_holdings(engine, day)
    with engine.connect() as conn:
        observed = store.read_holdings(conn, day)
        source = ledger_source(conn, day)
    if expected is None or observed is None or source not in (IMPORTED, ETHERSCAN):
        return None
    return reconcile(expected, observed)


def payout_split(engine: sa.Engine, day: dt.date) -> tuple[str, Split]:
    """The split that divides the profit of `day`: the one in force when it is paid out
    (`distribution_moment`); seeded on first use, as the profit-split graph does."""
    current = split_store.ensure_active_split(engine)
    moment = distribution_moment(day, split_store.utc_now())
    in_force = split_store.split_in_force(engine, moment) or current
    return str(in_force.id), in_force.split


@dataclass(frozen=True)
class PayoutRule:
    """Which split divides the day's profit: the recorded one when the day is reproduced (a day
    stored before payouts pays nothing, so history is not rewritten), else the one in force."""

    split: tuple[str, Split]
    recorded: dict | None

    def payout(self, profit_usd: Decimal) -> Payout | None:
        if self.recorded is None:
            return payout_of(profit_usd, self.split[1], self.split[0])
        done = recorded_payout(self.recorded)
        return None if done is None else payout_of(profit_usd, done.split, done.split_id)


def observed_apy(universe: pd.DataFrame) -> dict[str, float]:
    """The day's APY of each pool, the rate the paper ledger earns."""
    return dict(zip(universe["pool"].astype(str), universe["apy"].astype(float), strict=True))


def report_amounts(report: AllocationReport) -> dict[str, Decimal]:
    """The amount the report places in each pool."""
    return {line.pool: line.amount_usd for line in report.lines}


def paper_ledger(universe: pd.DataFrame, holdings: Holdings, report: AllocationReport) -> Holdings:
    """The decision executed on paper at the day's observed APYs: the next day's balances before
    any payout (their growth over the day's balances is the day's realised profit). The
    chain's ledger, also the backtest's."""
    executed = report_amounts(report) if report.is_new_allocation else None
    return roll_forward(
        holdings,
        executed,
        observed_apy(universe),
        gas_usd={line.pool: line.gas_usd for line in report.lines} if executed else None,
        conversion_usd={line.pool: line.conversion_usd for line in report.lines}
        if executed
        else None,
    )
