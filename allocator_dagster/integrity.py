"""Re-verifying a stored day: its snapshot, its inputs and its records against their hashes.

A day's allocation is reproducible only if nothing it was decided from, and nothing it wrote,
has changed since. Each stored day carries the hashes to prove it: the snapshot row its own
`snapshot_hash` (over the parameters and lists as stored), the snapshot the hashes of the day's
pool rows and balances, the allocation its `result_hash` over the stored report, whose lines
the detail rows must equal. `verify_stored_day` recomputes each and names every mismatch with
the stored and the recomputed hash. Re-materialising the day refuses to overwrite a day that
fails (the evidence stays; `daily_allocation.run_day`) and the blocking check
`stored_day_untampered` fails, until an operator accepts the recomputation
(`accept_recomputation`, `allocator run --accept-recomputation`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from allocator_dagster.allocation_report import stored_result_hash
from allocator_dagster.model import Holdings
from allocator_dagster.snapshots import (
    allocation_line,
    allocation_lines_hash,
    detail_lines,
    hash_holdings,
    hash_universe,
    snapshot_hash_of,
)
from allocator_dagster.storage import allocations as store
from allocator_dagster.universe_hash import universe_matches

SHORT = 12  # hex digits of a hash shown in a message


@dataclass(frozen=True)
class IntegrityProblem:
    """One stored record that no longer matches its hash."""

    record: str  # what was checked, e.g. "snapshot 12"
    stored: str  # the hash stored when the day was decided
    recomputed: str  # the hash of what is stored now
    meaning: str  # what the mismatch says happened

    @property
    def message(self) -> str:
        return (
            f"{self.record}: stored hash {self.stored[:SHORT]}, recomputed "
            f"{self.recomputed[:SHORT]} ({self.meaning})"
        )


def verify_stored_day(
    conn: sa.Connection,
    day: dt.date,
    universe: pd.DataFrame,
    holdings: Holdings | None,
    *,
    metrics_hash: str | None = None,
) -> list[IntegrityProblem]:
    """Every record of `day`'s stored allocation that no longer matches its hash (empty: intact
    or no allocation). `universe` and `holdings` are the day's stored pool rows and balances;
    `metrics_hash` is `hash_universe(universe)` when the caller has it already."""
    stored = store.read_allocation(conn, day)
    if stored is None:
        return []
    out = []
    row = store.snapshot_record(conn, stored.snapshot_id)
    recomputed = snapshot_hash_of(
        row.allocation_date, row.parameters, row.dynamic_lists, row.metrics_hash, row.balances_hash
    )
    if recomputed != row.snapshot_hash:
        out.append(
            IntegrityProblem(
                f"snapshot {row.snapshot_id} of {day}",
                row.snapshot_hash,
                recomputed,
                "its parameters, lists or input hashes were edited",
            )
        )
    metrics = metrics_hash if metrics_hash is not None else hash_universe(universe)
    if not universe_matches(universe, row.metrics_hash, computed=metrics):  # either scheme
        out.append(
            IntegrityProblem(
                f"pool data of {day} ({len(universe)} rows)",
                row.metrics_hash,
                metrics,
                "a pool-day row was edited, added or removed after the day was decided",
            )
        )
    balances = hash_holdings(holdings) if holdings is not None else "(no balances)"
    if balances != row.balances_hash:
        out.append(
            IntegrityProblem(
                f"balances of {day}",
                row.balances_hash,
                balances,
                "the day's start balances were changed after the day was decided",
            )
        )
    report_hash = stored_result_hash(stored.report)
    if report_hash != stored.result_hash:
        out.append(
            IntegrityProblem(
                f"allocation report of {day}",
                stored.result_hash,
                report_hash,
                "the stored report was edited",
            )
        )
    out += _detail_problems(conn, day, stored)
    return out


def _detail_problems(
    conn: sa.Connection, day: dt.date, stored: store.StoredAllocation
) -> list[IntegrityProblem]:
    """The detail rows against the report's lines (which the result hash covers)."""
    executed = stored.status.has_solution and stored.decision != "hold"
    report_lines = list(stored.report.get("allocations") or []) if executed else []
    rows = detail_lines(store.read_detail_rows(conn, day))
    expected, found = allocation_lines_hash(report_lines), allocation_lines_hash(rows)
    if expected == found:
        return []
    want = {line["pool"]: allocation_line(line) for line in report_lines}
    have = {line["pool"]: allocation_line(line) for line in rows}
    changed = []
    for pool in sorted(set(want) | set(have)):
        a, b = want.get(pool), have.get(pool)
        if a == b:
            continue
        if a is None or b is None:
            changed.append(f"pool {pool} {'added' if a is None else 'removed'}")
            continue
        fields = [k for k in a if a[k] != b[k]]
        shown = ", ".join(f"{k} {a[k]} -> {b[k]}" for k in fields[:2])
        changed.append(f"pool {pool}: {shown}")
    more = f"; and {len(changed) - 3} more" if len(changed) > 3 else ""
    return [
        IntegrityProblem(
            f"detail rows of {day}",
            expected,
            found,
            "rows edited or moved between pools: " + "; ".join(changed[:3]) + more,
        )
    ]
