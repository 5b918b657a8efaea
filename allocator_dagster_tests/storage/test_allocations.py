"""Stored snapshots read back as they were decided (storage/allocations.py)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from allocator_dagster.parameters import (
    TURNOVER_FIELDS_BEFORE,
    AllocationParameters,
    DynamicLists,
)
from allocator_dagster.snapshots import Snapshot
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.schema import allocation_parameters


def test_a_snapshot_stored_before_the_turnover_control_decides_without_it(
    engine: sa.Engine,
) -> None:
    """A snapshot row written before min_improvement_bps, limit_drift_pct and min_withdrawal_pct
    existed has no such keys; it is read back with them off (0), not with today's defaults,
    so reproducing that day gives the decision it had."""
    fresh = AllocationParameters()
    assert any(getattr(fresh, k) != v for k, v in TURNOVER_FIELDS_BEFORE.items())
    snapshot = Snapshot(
        allocation_date=dt.date(2025, 6, 2),
        mode="original",
        parameters=fresh,
        lists=DynamicLists(approved_tokens=("USDC",)),
        metrics_hash="m" * 64,
        balances_hash="b" * 64,
        code_version="0+old",
    )
    with engine.begin() as conn:
        sid = store.save_snapshot(conn, snapshot)
        old = fresh.model_dump(mode="json")
        for key in TURNOVER_FIELDS_BEFORE:
            del old[key]
        conn.execute(
            allocation_parameters.update()
            .where(allocation_parameters.c.snapshot_id == sid)
            .values(parameters=old)
        )
        sid_new = store.save_snapshot(conn, snapshot)
    with engine.connect() as conn:
        restored = store.load_snapshot(conn, sid).parameters
        kept = store.load_snapshot(conn, sid_new).parameters
    for key, value in TURNOVER_FIELDS_BEFORE.items():
        assert getattr(restored, key) == value, key
    assert restored.model_copy(update=TURNOVER_FIELDS_BEFORE) == fresh.model_copy(
        update=TURNOVER_FIELDS_BEFORE
    )
    assert kept == fresh  # a snapshot that stored the fields keeps them
