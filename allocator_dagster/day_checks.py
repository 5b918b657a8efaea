"""A stored allocation day checked again, by category: against the model under its snapshot's
parameters and lists (weights, limits, eligibility, details) and against its hashes (integrity).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from allocator_dagster.allocation_report import Decision
from allocator_dagster.day_decision import allocation_violations, placed_amounts
from allocator_dagster.integrity import verify_stored_day
from allocator_dagster.model import Violation, ViolationKind
from allocator_dagster.rebalance import set_aside
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.pool_reads import load_pool_day

INTEGRITY = "integrity"  # the stored records against their hashes (`integrity.py`)
CHECK_CATEGORIES = (*(kind.value for kind in ViolationKind), INTEGRITY)


def check_stored_day(engine: sa.Engine, day: dt.date) -> dict[str, list[str]]:
    """Re-verify the stored allocation of `day` against its snapshot and inputs, by category
    (`ViolationKind`: weights, limits, eligibility, details; and `INTEGRITY`: the snapshot,
    inputs, report and detail rows against their hashes), each problem prefixed by the day.

    Empty lists everywhere: sound. A day without a new allocation (infeasible, held) has nothing
    to verify beyond having no detail rows and intact records.
    """
    out: dict[str, list[str]] = {c: [] for c in CHECK_CATEGORIES}
    universe = load_pool_day(engine, day)
    for violation in stored_day_violations(engine, day, universe):
        out[violation.kind.value].append(f"{day}: {violation.message}")
    with engine.connect() as conn:
        holdings = store.read_holdings(conn, day)
        found = verify_stored_day(conn, day, universe, holdings)
    out[INTEGRITY] = [f"{day}: {p.message}" for p in found]
    return out


def stored_day_violations(
    engine: sa.Engine, day: dt.date, universe: pd.DataFrame | None = None
) -> list[Violation]:
    """Everything wrong with the stored allocation of `day` (empty: sound); `universe` is the
    day's stored pool rows when the caller has them already."""

    def record(detail: str) -> Violation:
        return Violation(None, detail, ViolationKind.DETAILS)

    with engine.connect() as conn:
        stored = store.read_allocation(conn, day)
        if stored is None:
            return [record("no allocation stored")]
        if not stored.status.has_solution or stored.decision == Decision.HOLD:
            if stored.amounts:
                return [record(f"a {stored.status} day has detail rows")]
            return []
        snapshot = store.load_snapshot(conn, stored.snapshot_id)
        holdings = store.read_holdings(conn, day)
    if universe is None:
        universe = load_pool_day(engine, day)
    if holdings is None:
        return [record("the balances the allocation started from are gone")]
    out = []
    weight_sum = sum(stored.weights.values())
    if abs(weight_sum - 1.0) > 1e-9:
        out.append(
            Violation(None, f"weights sum to {weight_sum:.12f}, not 1", ViolationKind.WEIGHTS)
        )
    aside = dict(stored.report.get("held_missing") or {})
    listed = set(universe["pool"].tolist())
    for pool in sorted(aside):
        if pool in listed or stored.amounts.get(pool) != holdings.positions.get(pool):
            out.append(record(f"pool {pool} is held aside as missing but is listed or traded"))
    placed, _ = set_aside(holdings, aside)
    amounts = placed_amounts(stored.amounts, aside)
    out += allocation_violations(
        universe, placed, snapshot.parameters, snapshot.lists, amounts, placed.total_usd
    )
    if stored.total_usd != holdings.total_usd:
        out.append(
            record(
                f"allocation total {stored.total_usd} differs from the day's balances {holdings.total_usd}",
            )
        )
    return out
