"""Reads of the stored days that the history charts draw (allocations, ledger, observed APY).

Three queries for a whole window, whatever its length: the charts of a range run's last days
must not cost one query per day and pool.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa

from allocator_dagster.allocation_history import HISTORY_DAYS, HistoryDay, Position, realised_usd
from allocator_dagster.allocation_report import Decision
from allocator_dagster.model import IDLE, Holdings, SolveStatus
from allocator_dagster.money import to_cents
from allocator_dagster.pool_labels import pool_label
from allocator_dagster.storage.schema import (
    asset_allocation_details,
    asset_allocations,
    daily_ledger,
    pool_daily_metrics,
)


def read_history(conn: sa.Connection, first: dt.date, last: dt.date) -> dict[dt.date, HistoryDay]:
    """Every day from `first` to `last` that has a stored allocation, by day."""
    allocations = conn.execute(
        sa.select(
            asset_allocations.c.allocation_date,
            asset_allocations.c.status,
            asset_allocations.c.decision,
            asset_allocations.c.expected_daily_yield_usd,
        ).where(asset_allocations.c.allocation_date.between(first, last))
    ).all()
    details = asset_allocation_details
    metrics = pool_daily_metrics
    held = conn.execute(
        sa.select(
            details.c.allocation_date,
            details.c.pool_id,
            details.c.symbol,
            details.c.project,
            details.c.chain,
            metrics.c.pool_meta,
            details.c.amount_usd,
        )
        .select_from(
            details.outerjoin(
                metrics,
                sa.and_(
                    metrics.c.metric_date == details.c.allocation_date,
                    metrics.c.pool_id == details.c.pool_id,
                ),
            )
        )
        .where(details.c.allocation_date.between(first, last), details.c.amount_usd > 0)
    ).all()
    positions: dict[dt.date, list[Position]] = defaultdict(list)
    for day, pool, symbol, project, chain, meta, amount in held:
        label = pool_label(pool, symbol, project, chain, meta)
        positions[day].append(Position(label, str(project), float(amount)))
    realised = _realised(conn, first, last)
    out = {}
    for day, status, decision, expected in sorted(allocations):
        new = SolveStatus(status).has_solution and decision != Decision.HOLD
        out[day] = HistoryDay(
            day=day,
            decision=str(decision),
            positions=tuple(sorted(positions[day], key=lambda p: p.label)) if new else None,
            expected_yield_usd=float(expected) if new else None,
            realised_yield_usd=realised.get(day),
        )
    return out


def _realised(conn: sa.Connection, first: dt.date, last: dt.date) -> dict[dt.date, float]:
    """What each day's start holdings earned at the day's observed APY (paper trading's rule)."""
    ledger, metrics = daily_ledger, pool_daily_metrics
    rows = conn.execute(
        sa.select(ledger.c.ledger_date, ledger.c.pool_id, ledger.c.amount_usd, metrics.c.apy)
        .select_from(
            ledger.outerjoin(
                metrics,
                sa.and_(
                    metrics.c.metric_date == ledger.c.ledger_date,
                    metrics.c.pool_id == ledger.c.pool_id,
                ),
            )
        )
        .where(ledger.c.ledger_date.between(first, last))
    ).all()
    held: dict[dt.date, dict[str, Decimal]] = defaultdict(dict)
    apy: dict[dt.date, dict[str, float]] = defaultdict(dict)
    for day, pool, amount, observed in rows:
        if pool != IDLE:
            held[day][pool] = to_cents(amount)
            if observed is not None:
                apy[day][pool] = float(observed)
        else:
            held.setdefault(day, {})
    return {
        day: float(realised_usd(Holdings(positions, Decimal(0)), apy[day]))
        for day, positions in held.items()
    }


class HistoryWindow:
    """The stored days of the window ending on each day asked for, in date order; a range run
    asks day after day, so only the days not read yet are read (each is final once its run
    stored it: the run writes the day it solves and the next day's ledger, never an earlier one)."""

    def __init__(self, engine: sa.Engine, length: int = HISTORY_DAYS) -> None:
        self._engine, self._length = engine, length
        self._days: dict[dt.date, HistoryDay] = {}
        self._read_until: dt.date | None = None

    def up_to(self, day: dt.date) -> list[HistoryDay]:
        first = day - dt.timedelta(days=self._length - 1)
        if self._read_until is None or not first <= self._read_until < day:
            self._days, start = {}, first
        else:
            start = self._read_until + dt.timedelta(days=1)
        with self._engine.connect() as conn:
            self._days.update(read_history(conn, start, day))
        self._read_until = day
        self._days = {d: h for d, h in self._days.items() if d >= first}
        return [self._days[d] for d in sorted(self._days)]
