"""Reads and writes of the allocation tables: snapshots, allocations with details, the ledger.

Every logical write is one transaction: a day's allocation, its detail rows and the next day's
paper-trading ledger land together or not at all, replacing that day (never duplicating it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from allocator_dagster.allocation_report import AllocationReport, Decision
from allocator_dagster.model import IDLE, Holdings, SolveStatus
from allocator_dagster.money import to_cents
from allocator_dagster.parameters import DynamicLists, stored_parameters
from allocator_dagster.snapshots import Snapshot
from allocator_dagster.storage import activity
from allocator_dagster.storage.db import inserted_id
from allocator_dagster.storage.schema import (
    allocation_parameters,
    asset_allocation_details,
    asset_allocations,
    daily_ledger,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ------------------------------------------------------------------ ledger


def read_holdings(conn: sa.Connection, day: dt.date) -> Holdings | None:
    rows = conn.execute(
        sa.select(daily_ledger.c.pool_id, daily_ledger.c.amount_usd)
        .where(daily_ledger.c.ledger_date == day)
        .order_by(daily_ledger.c.pool_id)
    ).all()
    if not rows:
        return None
    positions = {p: to_cents(a) for p, a in rows if p != IDLE}
    idle = next((to_cents(a) for p, a in rows if p == IDLE), Decimal("0.00"))
    return Holdings(positions=positions, idle_usd=idle)


def last_ledger_date_before(conn: sa.Connection, day: dt.date) -> dt.date | None:
    return conn.execute(
        sa.select(sa.func.max(daily_ledger.c.ledger_date)).where(daily_ledger.c.ledger_date < day)
    ).scalar_one()


def write_holdings(conn: sa.Connection, day: dt.date, holdings: Holdings, *, source: str) -> None:
    """Replace the ledger of `day` (inside the caller's transaction)."""
    conn.execute(daily_ledger.delete().where(daily_ledger.c.ledger_date == day))
    now = _now()
    rows = [
        {"ledger_date": day, "pool_id": p, "amount_usd": a, "source": source, "recorded_at": now}
        for p, a in holdings.held().items()
    ]
    rows.append(
        {
            "ledger_date": day,
            "pool_id": IDLE,
            "amount_usd": holdings.idle_usd,
            "source": source,
            "recorded_at": now,
        }
    )
    conn.execute(daily_ledger.insert(), rows)


# ------------------------------------------------------------------ snapshots


def save_snapshot(conn: sa.Connection, snapshot: Snapshot) -> int:
    result = conn.execute(
        allocation_parameters.insert().values(
            allocation_date=snapshot.allocation_date,
            mode=snapshot.mode,
            parameters=snapshot.parameters.model_dump(mode="json"),
            dynamic_lists=snapshot.lists.model_dump(mode="json"),
            metrics_hash=snapshot.metrics_hash,
            balances_hash=snapshot.balances_hash,
            code_version=snapshot.code_version,
            solver_versions=snapshot.solver_versions,
            snapshot_hash=snapshot.snapshot_hash,
            created_at=_now(),
        )
    )
    return inserted_id(result)


def _snapshot_from_row(row: sa.Row) -> Snapshot:
    return Snapshot(
        allocation_date=row.allocation_date,
        mode=row.mode,
        parameters=stored_parameters(row.parameters),
        lists=DynamicLists(**row.dynamic_lists),
        metrics_hash=row.metrics_hash,
        balances_hash=row.balances_hash,
        code_version=row.code_version,
        solver_versions=dict(row.solver_versions),
        snapshot_id=row.snapshot_id,
    )


def load_snapshot(conn: sa.Connection, snapshot_id: int) -> Snapshot:
    row = conn.execute(
        sa.select(allocation_parameters).where(allocation_parameters.c.snapshot_id == snapshot_id)
    ).one()
    return _snapshot_from_row(row)


def snapshot_record(conn: sa.Connection, snapshot_id: int) -> sa.Row:
    """The stored snapshot row as it is (raw JSON), to re-verify its hash."""
    return conn.execute(
        sa.select(allocation_parameters).where(allocation_parameters.c.snapshot_id == snapshot_id)
    ).one()


def snapshot_in_force(conn: sa.Connection, day: dt.date) -> Snapshot | None:
    """The snapshot of the allocation stored for `day`, else the day's latest snapshot."""
    sid = conn.execute(
        sa.select(asset_allocations.c.snapshot_id).where(asset_allocations.c.allocation_date == day)
    ).scalar_one_or_none()
    if sid is None:
        sid = conn.execute(
            sa.select(sa.func.max(allocation_parameters.c.snapshot_id)).where(
                allocation_parameters.c.allocation_date == day
            )
        ).scalar_one()
    return None if sid is None else load_snapshot(conn, int(sid))


# ------------------------------------------------------------------ allocations


@dataclass(frozen=True)
class StoredAllocation:
    allocation_date: dt.date
    status: SolveStatus
    decision: Decision
    result_hash: str
    snapshot_id: int
    total_usd: Decimal
    amounts: dict[str, Decimal]
    weights: dict[str, float]
    report: dict


def write_allocation(
    conn: sa.Connection,
    day: dt.date,
    report: AllocationReport,
    snapshot_id: int,
    *,
    extra: dict | None = None,
) -> None:
    """Replace the allocation of `day` and its detail rows (inside the caller's transaction).

    An infeasible or failed day stores its status and reasons with no detail rows: the previous
    allocation stays in force.
    """
    previous_hash = conn.execute(
        sa.select(asset_allocations.c.result_hash).where(asset_allocations.c.allocation_date == day)
    ).scalar()
    if report.decision == "forced" and previous_hash != report.result_hash:
        # a forced reallocation is an event of the transparency log; reproducing it is not
        activity.record(
            conn,
            "forced_reallocation",
            actor="system",
            subject_type="allocation",
            subject_id=day,
            payload={
                "reasons": list(report.reasons),
                "status": report.status,
                "total_usd": report.total_usd,
                "result_hash": report.result_hash,
            },
            at=_now(),
        )
    conn.execute(
        asset_allocation_details.delete().where(asset_allocation_details.c.allocation_date == day)
    )
    conn.execute(asset_allocations.delete().where(asset_allocations.c.allocation_date == day))
    conn.execute(
        asset_allocations.insert().values(
            allocation_date=day,
            status=report.status,
            decision=report.decision,
            reasons=report.reasons,
            total_usd=report.total_usd,
            expected_daily_yield_usd=report.daily_yield_usd,
            gas_cost_usd=report.gas_usd,
            conversion_cost_usd=report.conversion_usd,
            objective_usd_per_day=report.objective_usd_per_day,
            solver=report.backend,
            snapshot_id=snapshot_id,
            result_hash=report.result_hash,
            report={**report.as_dict(), **(extra or {})},
            created_at=_now(),
        )
    )
    if not report.is_new_allocation:
        return
    rows = [
        {
            "allocation_date": day,
            "pool_id": line.pool,
            "chain": line.chain,
            "project": line.project,
            "symbol": line.symbol,
            "tokens": line.tokens,
            "pool_group": line.group,
            "amount_usd": line.amount_usd,
            "weight": line.weight,
            "delta_usd": line.delta_usd,
            "apy_used": line.apy_used,
            "expected_daily_yield_usd": line.daily_yield_usd,
            "gas_cost_usd": line.gas_usd,
            "conversion_cost_usd": line.conversion_usd,
        }
        for line in report.lines
    ]
    if rows:
        conn.execute(asset_allocation_details.insert(), rows)


def record_reproduction(conn: sa.Connection, day: dt.date, info: dict) -> None:
    """Note a reproduction attempt on the stored allocation without changing the allocation."""
    report = conn.execute(
        sa.select(asset_allocations.c.report).where(asset_allocations.c.allocation_date == day)
    ).scalar_one()
    conn.execute(
        asset_allocations.update()
        .where(asset_allocations.c.allocation_date == day)
        .values(report={**dict(report), "reproduction": info})
    )


def read_allocation(conn: sa.Connection, day: dt.date) -> StoredAllocation | None:
    row = conn.execute(
        sa.select(asset_allocations).where(asset_allocations.c.allocation_date == day)
    ).one_or_none()
    if row is None:
        return None
    details = conn.execute(
        sa.select(
            asset_allocation_details.c.pool_id,
            asset_allocation_details.c.amount_usd,
            asset_allocation_details.c.weight,
        )
        .where(asset_allocation_details.c.allocation_date == day)
        .order_by(asset_allocation_details.c.pool_id)
    ).all()
    return StoredAllocation(
        allocation_date=row.allocation_date,
        status=SolveStatus(row.status),
        decision=Decision(row.decision),
        result_hash=row.result_hash,
        snapshot_id=row.snapshot_id,
        total_usd=to_cents(row.total_usd),
        amounts={p: to_cents(a) for p, a, _ in details},
        weights={p: float(w) for p, _, w in details},
        report=dict(row.report),
    )


def read_detail_rows(conn: sa.Connection, day: dt.date) -> list[dict]:
    """Every stored detail row of the day's allocation, as a dict of its columns."""
    rows = conn.execute(
        sa.select(asset_allocation_details)
        .where(asset_allocation_details.c.allocation_date == day)
        .order_by(asset_allocation_details.c.pool_id)
    ).all()
    return [dict(row._mapping) for row in rows]


def read_detail_costs(conn: sa.Connection, day: dt.date) -> dict[str, tuple[float, float]]:
    """Gas and conversion cost per pool of the day's allocation (what paper trading pays)."""
    rows = conn.execute(
        sa.select(
            asset_allocation_details.c.pool_id,
            asset_allocation_details.c.gas_cost_usd,
            asset_allocation_details.c.conversion_cost_usd,
        ).where(asset_allocation_details.c.allocation_date == day)
    ).all()
    return {p: (float(g), float(c)) for p, g, c in rows}


def read_detail_pools(
    conn: sa.Connection, day: dt.date
) -> dict[str, tuple[str, str, float, float]]:
    """Chain, project, gas and conversion cost per pool of the day's allocation details."""
    rows = conn.execute(
        sa.select(
            asset_allocation_details.c.pool_id,
            asset_allocation_details.c.chain,
            asset_allocation_details.c.project,
            asset_allocation_details.c.gas_cost_usd,
            asset_allocation_details.c.conversion_cost_usd,
        ).where(asset_allocation_details.c.allocation_date == day)
    ).all()
    return {p: (ch, pr, float(g), float(c)) for p, ch, pr, g, c in rows}


def allocated_days(conn: sa.Connection, first: dt.date, last: dt.date) -> list[dt.date]:
    """The days of first..last that have a stored allocation, in date order."""
    return list(
        conn.execute(
            sa.select(asset_allocations.c.allocation_date)
            .where(asset_allocations.c.allocation_date.between(first, last))
            .order_by(asset_allocations.c.allocation_date)
        ).scalars()
    )


def allocation_in_force(conn: sa.Connection, day: dt.date) -> StoredAllocation | None:
    """The newest real allocation on or before `day` (infeasible days do not replace it)."""
    latest = conn.execute(
        sa.select(sa.func.max(asset_allocations.c.allocation_date)).where(
            asset_allocations.c.allocation_date <= day,
            asset_allocations.c.status.in_((SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)),
        )
    ).scalar_one()
    return None if latest is None else read_allocation(conn, latest)
