"""Imported balances: a day's observed ledger rows and the record of who imported them."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace
from decimal import Decimal

import sqlalchemy as sa

from allocator_dagster.balances_import import BalancesFile
from allocator_dagster.storage.allocations import write_holdings
from allocator_dagster.storage.db import StorageError, inserted_id, write_transaction
from allocator_dagster.storage.schema import balance_imports, daily_ledger

# daily_ledger.source of imported rows (paper-trading rows say "paper", the first day "initial")
IMPORTED = "import"
# daily_ledger.source of balances observed on chain by the etherscan balances source
ETHERSCAN = "etherscan"


@dataclass(frozen=True)
class BalanceImport:
    import_id: int
    ledger_date: dt.date
    imported_by: str
    imported_at: dt.datetime
    source_file: str
    file_sha256: str
    positions: int
    total_usd: Decimal
    replaced_source: str | None


def ledger_source(conn: sa.Connection, day: dt.date) -> str | None:
    """Who wrote the day's ledger rows (import, paper, initial), or None without rows."""
    return conn.execute(
        sa.select(sa.func.max(daily_ledger.c.source)).where(daily_ledger.c.ledger_date == day)
    ).scalar_one()


def import_balances(
    engine: sa.Engine, day: dt.date, balances: BalancesFile, *, by: str, source: str = IMPORTED
) -> BalanceImport:
    """Replace the day's ledger with the observed balances and record the import, in ONE
    transaction: a failure leaves the previous rows (and no record) in place. `source` is the
    rows' daily_ledger.source (a file import, or an on-chain observation)."""
    now = dt.datetime.now(dt.UTC)
    try:
        return _import(engine, day, balances, by, now, source)
    except sa.exc.DBAPIError as exc:
        raise StorageError(
            f"the balances of {day} were not imported (nothing changed): {exc.orig}"
        ) from None


def _import(
    engine: sa.Engine,
    day: dt.date,
    balances: BalancesFile,
    by: str,
    now: dt.datetime,
    source: str,
) -> BalanceImport:
    with write_transaction(engine) as conn:
        replaced = ledger_source(conn, day)
        write_holdings(conn, day, balances.holdings, source=source)
        record = BalanceImport(
            import_id=0,
            ledger_date=day,
            imported_by=by,
            imported_at=now,
            source_file=balances.source_file[:512],
            file_sha256=balances.sha256,
            positions=len(balances.holdings.held()),
            total_usd=balances.holdings.total_usd,
            replaced_source=replaced,
        )
        values = {k: v for k, v in asdict(record).items() if k != "import_id"}
        import_id = inserted_id(conn.execute(balance_imports.insert().values(**values)))
    return replace(record, import_id=import_id)


def imports_of(conn: sa.Connection, day: dt.date) -> list[BalanceImport]:
    """Every import of `day`, oldest first (the last one is in the ledger)."""
    rows = conn.execute(
        sa.select(balance_imports)
        .where(balance_imports.c.ledger_date == day)
        .order_by(balance_imports.c.import_id)
    ).all()
    return [BalanceImport(**row._mapping) for row in rows]
