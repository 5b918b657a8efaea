"""Payouts leave the treasury, through Dagster on SQLite and PostgreSQL: the next day's paper
ledger is short by the paid shares of the day's realised profit, a reproduced range pays exactly
what it recorded, and a day stored before payouts is reproduced as it was (it pays nothing)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from allocator_dagster.day_payouts import DayInputError, day_payout, recorded_payout
from allocator_dagster.model import Holdings
from allocator_dagster.payouts import pay_out
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.schema import asset_allocations
from allocator_dagster_tests.support.allocation_runs import chain_resources, checks_passed, run_days

DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=k) for k in range(3)]


def _ledgers(engine: sa.Engine) -> dict[dt.date, Holdings | None]:
    with engine.connect() as conn:
        return {d: store.read_holdings(conn, d) for d in [*DAYS, DAYS[-1] + dt.timedelta(days=1)]}


def test_payouts_leave_the_paper_ledger_and_are_reproduced(database_url: str) -> None:
    resources = chain_resources(database_url)
    assert run_days(resources, DAYS[0], DAYS[-1]).success
    engine = get_engine(database_url)
    ledgers = _ledgers(engine)
    paid = []
    for day in DAYS:
        payout = day_payout(engine, day)
        start, following = ledgers[day], ledgers[day + dt.timedelta(days=1)]
        assert start is not None and following is not None
        # what was realised stays in, less the shares paid to the DAO, the lottery and the creator
        assert following.total_usd == start.total_usd + payout.profit_usd - payout.paid_usd
        paid.append(payout.paid_usd)
    assert paid[0] == 0 and paid[1] > 0  # day 1 places idle capital: a loss, nothing paid

    again = run_days(resources, DAYS[0], DAYS[-1])
    assert again.success and all(checks_passed(again).values()), checks_passed(again)
    assert _ledgers(engine) == ledgers  # the same payouts, to the cent


def test_a_day_stored_before_payouts_is_reproduced_as_it_was(database_url: str) -> None:
    resources = chain_resources(database_url)
    assert run_days(resources, DAYS[0], DAYS[-1]).success
    engine = get_engine(database_url)
    second, third = DAYS[1], DAYS[2]
    payout = day_payout(engine, second)
    with engine.begin() as conn:  # what a database written before payouts holds
        stored = store.read_allocation(conn, second)
        assert stored is not None
        legacy = {k: v for k, v in stored.report.items() if k != "payout"}
        conn.execute(
            asset_allocations.update()
            .where(asset_allocations.c.allocation_date == second)
            .values(report=legacy)
        )
        following = store.read_holdings(conn, third)
        assert following is not None
        gross = Holdings(positions=following.held(), idle_usd=following.idle_usd + payout.paid_usd)
        assert pay_out(gross, payout.paid_usd) == following
        store.write_holdings(conn, third, gross, source="paper")
    with pytest.raises(DayInputError, match="stored before payouts left the treasury"):
        day_payout(engine, second)
    before = _ledgers(engine)
    # reproducing the legacy day keeps the ledger it wrote for the next day: no payout
    assert run_days(resources, second).success
    assert _ledgers(engine)[third] == before[third] == gross
    with engine.connect() as conn:
        assert recorded_payout(store.read_allocation(conn, second).report) is None  # type: ignore[union-attr]
