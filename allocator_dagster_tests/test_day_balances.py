"""A day's start balances: the paper ledger's first day and gaps, and observed balances only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from allocator_dagster.day_balances import start_balances
from allocator_dagster.day_payouts import DayInputError
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.balances import ETHERSCAN, IMPORTED, ledger_source
from allocator_dagster_tests.support.instances import holdings_of

DAY = dt.date(2026, 3, 2)
CAPITAL = Decimal("1000000.00")


def _start(engine: sa.Engine, source: str, day: dt.date = DAY, paper: bool = True):
    with engine.begin() as conn:
        return start_balances(
            conn,
            day,
            source,
            paper_trading=paper,
            initial_capital_usd=CAPITAL,
        )


def _write(engine: sa.Engine, day: dt.date, source: str) -> None:
    with engine.begin() as conn:
        store.write_holdings(conn, day, holdings_of({"p1": "600.00"}, "400.00"), source=source)


def test_the_paper_ledger_starts_from_the_initial_capital_once(engine: sa.Engine) -> None:
    first = _start(engine, "paper")
    assert first.idle_usd == CAPITAL and first.held() == {}
    with engine.connect() as conn:
        assert ledger_source(conn, DAY) == "initial"
    assert _start(engine, "paper") == first  # the stored day, not a second first day


def test_a_gap_in_the_paper_ledger_names_the_days_to_run(engine: sa.Engine) -> None:
    _write(engine, DAY, "paper")
    later = DAY + dt.timedelta(days=3)
    with pytest.raises(
        DayInputError, match="the ledger stops at 2026-03-02.*from 2026-03-02 to 2026-03-04"
    ):
        _start(engine, "paper", later)
    with pytest.raises(DayInputError, match="import the day's balances first"):
        _start(engine, "paper", later, paper=False)


@pytest.mark.parametrize("source", ["ledger", "etherscan"])
def test_observed_balances_are_never_paper_rows(engine: sa.Engine, source: str) -> None:
    with pytest.raises(DayInputError, match="allocator balances import --day 2026-03-02 FILE"):
        _start(engine, source)
    _write(engine, DAY, "paper")
    with pytest.raises(DayInputError, match="its daily_ledger rows come from 'paper'"):
        _start(engine, source)
    _write(engine, DAY, IMPORTED)
    assert _start(engine, source).total_usd == Decimal("1000.00")


def test_etherscan_starts_from_an_observation_on_chain(engine: sa.Engine) -> None:
    _write(engine, DAY, ETHERSCAN)
    assert _start(engine, "etherscan").held() == {"p1": Decimal("600.00")}
    with pytest.raises(DayInputError, match="come from 'etherscan'"):
        _start(engine, "ledger")
