"""Where a day's start balances come from: the paper ledger, imported or on-chain balances.

On paper each day starts from the ledger the day before wrote (the first day from the initial
capital); with observed balances (`ledger`, `etherscan`) it starts from what the treasury
really holds, imported for the day (`allocator balances import`) or read on chain.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal, get_args

import sqlalchemy as sa

from allocator_dagster.day_payouts import DayInputError
from allocator_dagster.model import Holdings
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.balances import ETHERSCAN, IMPORTED, ledger_source

# paper: each day starts from the paper ledger of the day before; ledger: from imported balances;
# etherscan: from balances observed on chain (onchain_balances.py), or imported for that day.
BalancesSource = Literal["paper", "ledger", "etherscan"]
BALANCES_SOURCES: tuple[BalancesSource, ...] = get_args(BalancesSource)
# the daily_ledger sources each observed-balances source starts a day from
OBSERVED_ROWS: dict[str, tuple[str, ...]] = {
    "ledger": (IMPORTED,),
    "etherscan": (ETHERSCAN, IMPORTED),
}
IMPORT_COMMAND = "allocator balances import --day {day} FILE"


def start_balances(
    conn: sa.Connection,
    day: dt.date,
    source: BalancesSource,
    *,
    paper_trading: bool,
    initial_capital_usd: Decimal,
) -> Holdings:
    """The day's start balances; the ledger's first day stores the initial capital."""
    holdings, first_day = _holdings_for(conn, day, source, paper_trading, initial_capital_usd)
    if first_day:
        store.write_holdings(conn, day, holdings, source="initial")
    return holdings


def _holdings_for(
    conn: sa.Connection,
    day: dt.date,
    source: BalancesSource,
    paper_trading: bool,
    initial_capital_usd: Decimal,
) -> tuple[Holdings, bool]:
    """The day's start balances, and whether they were just created (first day of the ledger)."""
    if source in OBSERVED_ROWS:
        return _imported_holdings(conn, day, source), False
    holdings = store.read_holdings(conn, day)
    if holdings is not None:
        return holdings, False
    previous = store.last_ledger_date_before(conn, day)
    if previous is None and paper_trading:
        return Holdings.idle(initial_capital_usd), True
    if previous is None:
        raise DayInputError(f"no daily_ledger rows for {day}: import the day's balances first")
    if paper_trading:
        raise DayInputError(
            f"balances for {day} are missing: the ledger stops at {previous}. Days depend on the day "
            f"before; materialise asset_allocations from {previous} to {day - dt.timedelta(days=1)} first."
        )
    raise DayInputError(f"no daily_ledger rows for {day}: import the day's balances first")


def _imported_holdings(conn: sa.Connection, day: dt.date, balances_source: str) -> Holdings:
    """The day's observed balances; paper rows are not observations and do not count."""
    holdings = store.read_holdings(conn, day)
    source = ledger_source(conn, day)
    if holdings is None or source not in OBSERVED_ROWS[balances_source]:
        found = "" if source is None else f" (its daily_ledger rows come from {source!r})"
        raise DayInputError(
            f"no imported balances for {day}{found}: with ALLOCATOR_BALANCES_SOURCE={balances_source} each day "
            f"starts from the treasury's observed holdings; run `{IMPORT_COMMAND.format(day=day)}` first"
        )
    return holdings
