"""Issue 10 §3: a tampered stored day fails a blocking check and is not silently overwritten."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from dagster import AssetSelection

from allocator_dagster.defs.allocation.assets import CHAIN_KEYS
from allocator_dagster.snapshots import hash_universe, snapshot_hash_of
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster.storage.schema import allocation_parameters, asset_allocation_details
from allocator_dagster.storage.schema import pool_daily_metrics as pool_table
from allocator_dagster.universe_hash import json_universe_hash
from allocator_dagster_tests.support.allocation_runs import (
    chain_resources,
    checks_passed,
    held_pools,
    run_days,
)

DAY = dt.date(2026, 6, 1)
CHAIN_AND_CHECKS = AssetSelection.keys(*CHAIN_KEYS) | AssetSelection.checks_for_assets(
    "asset_allocations"
)


def _check_details(result, name: str) -> str:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return str(evaluation.metadata["details"].value)


def _rerun(resources: dict, **config):
    return run_days(resources, DAY, selection=CHAIN_AND_CHECKS, config=config or None)


@pytest.fixture
def decided(database_url: str) -> tuple[dict, sa.Engine, store.StoredAllocation]:
    resources = chain_resources(database_url)
    first = run_days(resources, DAY)
    assert first.success and all(checks_passed(first).values())
    engine = get_engine(database_url)
    with engine.connect() as conn:
        return resources, engine, store.read_allocation(conn, DAY)


@pytest.mark.parametrize("edit", ["lists", "parameters"])
def test_an_edited_snapshot_fails_the_blocking_check(decided, edit: str) -> None:
    resources, engine, before = decided
    table = allocation_parameters
    with engine.begin() as conn:
        row = conn.execute(sa.select(table).where(table.c.snapshot_id == before.snapshot_id)).one()
        if edit == "lists":  # a token nobody holds: the result stays the same
            lists = dict(row.dynamic_lists)
            lists["approved_tokens"] = sorted([*lists["approved_tokens"], "ZZZ"])
            values = {"dynamic_lists": lists}
        else:
            values = {"parameters": {**row.parameters, "min_improvement_usd": 49.0}}
        conn.execute(
            table.update().where(table.c.snapshot_id == before.snapshot_id).values(**values)
        )
    result = _rerun(resources)
    passed = checks_passed(result)
    assert passed["stored_day_untampered"] is False  # was: no check, "matched"
    details = _check_details(result, "stored_day_untampered")
    assert (
        f"snapshot {before.snapshot_id} of {DAY}: stored hash {row.snapshot_hash[:12]}" in details
    )
    recomputed = details.split("recomputed ")[1][:12]
    assert recomputed != row.snapshot_hash[:12]
    with engine.connect() as conn:
        after = store.read_allocation(conn, DAY)
    assert after.snapshot_id == before.snapshot_id and after.amounts == before.amounts
    assert after.report["reproduction"]["integrity"][0].startswith(f"snapshot {before.snapshot_id}")


def test_an_edited_pool_day_apy_fails_the_check(decided) -> None:
    resources, engine, before = decided
    held = {p for p, _, _ in held_pools(engine, DAY)}
    with engine.begin() as conn:
        other = conn.execute(
            sa.select(pool_table.c.pool_id)
            .where(pool_table.c.metric_date == DAY, pool_table.c.pool_id.not_in(held))
            .order_by(pool_table.c.pool_id)
            .limit(1)
        ).scalar_one()
        conn.execute(  # a pool we do not hold: the decision itself does not move
            pool_table.update()
            .where(pool_table.c.metric_date == DAY, pool_table.c.pool_id == other)
            .values(apy=pool_table.c.apy + 0.01)
        )
    checks_only = run_days(
        resources, DAY, selection=AssetSelection.checks_for_assets("asset_allocations")
    )
    assert checks_passed(checks_only)["stored_day_untampered"] is False
    result = _rerun(resources)
    assert checks_passed(result)["stored_day_untampered"] is False  # was: "matched"
    details = _check_details(result, "stored_day_untampered")
    assert f"pool data of {DAY}" in details and "a pool-day row was edited" in details
    with engine.connect() as conn:
        snapshot = store.load_snapshot(conn, before.snapshot_id)
    assert f"stored hash {snapshot.metrics_hash[:12]}, recomputed" in details


def test_detail_rows_moved_between_pools_stay_as_evidence_until_accepted(decided) -> None:
    resources, engine, before = decided
    (big, _, _), (small, _, _) = held_pools(engine, DAY)[0], held_pools(engine, DAY)[-1]
    table = asset_allocation_details
    moved = Decimal("1000.00")
    with engine.begin() as conn:
        for pool, change in ((big, -moved), (small, moved)):
            conn.execute(
                table.update()
                .where(table.c.allocation_date == DAY, table.c.pool_id == pool)
                .values(amount_usd=table.c.amount_usd + change)
            )
    result = _rerun(resources)
    assert checks_passed(result)["stored_day_untampered"] is False
    details = _check_details(result, "stored_day_untampered")
    assert f"detail rows of {DAY}" in details and "moved between pools" in details
    assert f"pool {big}: amount_usd {before.amounts[big]} -> {before.amounts[big] - moved}" in (
        details
    )
    with engine.connect() as conn:
        kept = store.read_allocation(conn, DAY)
    assert kept.amounts[big] == before.amounts[big] - moved  # was: silently overwritten
    assert kept.amounts[small] == before.amounts[small] + moved

    accepted = _rerun(resources, accept_recomputation=True)
    assert accepted.success and all(checks_passed(accepted).values()), checks_passed(accepted)
    with engine.connect() as conn:
        restored = store.read_allocation(conn, DAY)
    assert restored.amounts == before.amounts and restored.result_hash == before.result_hash
    assert restored.report["reproduction"]["accepted"] is True
    assert "moved between pools" in restored.report["reproduction"]["integrity"][0]


def test_a_mismatch_shows_the_stored_and_the_recomputed_hash(decided) -> None:
    resources, engine, before = decided
    with engine.begin() as conn:
        conn.execute(
            pool_table.update()
            .where(pool_table.c.metric_date == DAY)
            .values(tvl_forecast=pool_table.c.tvl_forecast / 10)
        )
    result = _rerun(resources)
    assert checks_passed(result)["reproduced_hash_matches"] is False
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "reproduced_hash_matches"
    ]
    text = str(evaluation.metadata["mismatches"].value)
    with engine.connect() as conn:
        attempted = store.read_allocation(conn, DAY).report["reproduction"]["attempted_hash"]
    assert attempted != before.result_hash
    # was: the stored hash twice ("abc -> abc")
    assert f"stored {before.result_hash[:12]}, recomputed {attempted[:12]}" in text


def test_a_snapshot_hashed_before_the_typed_columns_still_verifies(decided) -> None:
    """A database written before the typed-column hash: its snapshots hold the canonical-JSON
    hash of the pool data; the day reproduces and passes, and an edit is still caught."""
    resources, engine, before = decided
    table = allocation_parameters
    universe = load_pool_day(engine, DAY)
    with engine.begin() as conn:
        row = conn.execute(sa.select(table).where(table.c.snapshot_id == before.snapshot_id)).one()
        old = json_universe_hash(universe)
        assert row.metrics_hash == hash_universe(universe) != old
        conn.execute(
            table.update()
            .where(table.c.snapshot_id == before.snapshot_id)
            .values(
                metrics_hash=old,
                snapshot_hash=snapshot_hash_of(
                    row.allocation_date, row.parameters, row.dynamic_lists, old, row.balances_hash
                ),
            )
        )
    result = _rerun(resources)
    assert result.success and all(checks_passed(result).values())
    with engine.connect() as conn:
        after = store.read_allocation(conn, DAY)
    reproduction = after.report["reproduction"]
    assert reproduction["matched"] is True and reproduction["inputs_match_snapshot"] is True
    assert after.snapshot_id == before.snapshot_id
    with engine.begin() as conn:
        conn.execute(
            pool_table.update()
            .where(pool_table.c.metric_date == DAY, pool_table.c.pool_id == universe["pool"][0])
            .values(tvl_usd=pool_table.c.tvl_usd * 2)
        )
    result = _rerun(resources)
    assert checks_passed(result)["stored_day_untampered"] is False
    details = _check_details(result, "stored_day_untampered")
    assert f"pool data of {DAY}" in details and f"stored hash {old[:12]}" in details
