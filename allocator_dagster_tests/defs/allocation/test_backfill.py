"""Issue 5: backfills reproduce past days exactly; fresh snapshots use the new lists."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import AssetSelection

from allocator_dagster.defs.allocation.assets import CHAIN_KEYS
from allocator_dagster.model import pool_tokens
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.lists import change_list
from allocator_dagster.storage.schema import asset_allocation_details
from allocator_dagster.storage.schema import pool_daily_metrics as pool_table
from allocator_dagster_tests.support.allocation_runs import (
    chain_resources,
    checks_passed,
    held_pools,
    run_days,
)

DAYS = 30
START = dt.date(2026, 4, 1)


@pytest.mark.slow
def test_backfill_reproduces_hashes_then_fresh_snapshots_use_new_lists(
    database_url: str, tmp_path: Path
) -> None:
    end = START + dt.timedelta(days=DAYS - 1)
    resources = chain_resources(database_url)
    assert run_days(resources, START, end).success
    engine = get_engine(database_url)
    days = [START + dt.timedelta(days=k) for k in range(DAYS)]
    with engine.connect() as conn:
        original = {d: store.read_allocation(conn, d).result_hash for d in days}
    # change every list and the parameters
    (pool, symbol, project) = held_pools(engine, START + dt.timedelta(days=10))[0]
    token = pool_tokens(symbol, ())[0][0]
    change_list(engine, "blacklisted_tokens", token, action="add", reason="exploit", by="t")
    change_list(engine, "icebox_tokens", "WBTC", action="add", reason="custody", by="t")
    change_list(engine, "approved_tokens", "PYUSD2", action="add", reason="new", by="t")
    other = next(p for _, _, p in held_pools(engine, START) if p != project)
    change_list(engine, "approved_protocols", other, action="remove", reason="audit", by="t")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"tvl_limit_percentage": 0.02, "min_pools": 8}))
    changed = chain_resources(database_url, params)

    reproduce = run_days(changed, START, end)
    assert reproduce.success
    checks = {e.check_name: e.passed for e in reproduce.get_asset_check_evaluations()}
    assert checks["reproduced_hash_matches"] is True
    with engine.connect() as conn:
        again = {d: store.read_allocation(conn, d) for d in days}
    assert {d: a.result_hash for d, a in again.items()} == original
    assert all(a.report["reproduction"]["matched"] is True for a in again.values())

    # per-partition runs keep working in reproduce mode
    single = run_days(changed, START + dt.timedelta(days=7))
    assert single.success
    with engine.connect() as conn:
        assert (
            store.read_allocation(conn, START + dt.timedelta(days=7)).result_hash
            == original[START + dt.timedelta(days=7)]
        )

    fresh = run_days(changed, START, end, config={"snapshot": "fresh"})
    assert fresh.success
    with engine.connect() as conn:
        renewed = {d: store.read_allocation(conn, d) for d in days}
        snapshots = {d: store.load_snapshot(conn, a.snapshot_id) for d, a in renewed.items()}
    assert all(token in s.lists.blacklisted_tokens for s in snapshots.values())
    assert all(other not in s.lists.approved_protocols for s in snapshots.values())
    assert all(
        s.parameters.tvl_limit_percentage == 0.02 and s.mode == "fresh" for s in snapshots.values()
    )
    for d in days:
        assert all(token not in pool_tokens(s, ())[0] for _, s, _ in held_pools(engine, d))
        assert all(p != other for _, _, p in held_pools(engine, d))
    assert sum(renewed[d].result_hash != original[d] for d in days) >= DAYS // 2
    assert sum(renewed[START].amounts.values()) == Decimal("10000000.00")


def test_reproduce_never_rewrites_a_day_and_fresh_reruns_keep_later_days_consistent(
    database_url: str,
) -> None:
    resources = chain_resources(database_url)
    day1, day2 = START, START + dt.timedelta(days=1)
    assert run_days(resources, day1, day2).success
    engine = get_engine(database_url)
    with engine.connect() as conn:
        before = store.read_allocation(conn, day1)
        ledger2 = store.read_holdings(conn, day2)
    # the stored inputs of day 1 change behind our back: a reproduction can no longer match
    with engine.begin() as conn:
        conn.execute(
            pool_table.update()
            .where(pool_table.c.metric_date == day1)
            .values(tvl_forecast=pool_table.c.tvl_forecast / 10)
        )
    result = run_days(
        resources,
        day1,
        selection=AssetSelection.keys(*CHAIN_KEYS)
        | AssetSelection.checks_for_assets("asset_allocations"),
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["reproduced_hash_matches"] is False
    with engine.connect() as conn:
        after = store.read_allocation(conn, day1)
        assert store.read_holdings(conn, day2) == ledger2
    assert after.result_hash == before.result_hash and after.amounts == before.amounts
    assert after.report["reproduction"]["matched"] is False
    assert after.report["reproduction"]["attempted_hash"] != before.result_hash

    # a fresh re-run of day 1 alone would orphan day 2's allocation: refused, nothing written
    refused = run_days(resources, day1, config={"snapshot": "fresh"})
    assert not refused.success
    error = refused.get_step_failure_events()[0].event_specific_data.error
    assert "re-run 2026-04-01 together with the days after it" in error.message + (
        error.cause.message if error.cause else ""
    )
    with engine.connect() as conn:
        assert store.read_allocation(conn, day1).result_hash == before.result_hash
    # ... and allowed when the run covers the later days
    assert run_days(resources, day1, day2, config={"snapshot": "fresh"}).success


def _drop_pool(resources: dict, engine: sa.Engine, day: dt.date, pool: str) -> None:
    """Store the day's pool data, then take `pool` out of it (a fetch that lost one pool)."""
    assert run_days(resources, day, selection=AssetSelection.keys("pool_daily_metrics")).success
    with engine.begin() as conn:
        conn.execute(
            pool_table.delete().where(pool_table.c.metric_date == day, pool_table.c.pool_id == pool)
        )


def test_a_held_pool_missing_from_a_fetch_is_held_until_its_absence_is_confirmed(
    database_url: str,
) -> None:
    resources = chain_resources(database_url)
    assert run_days(resources, START).success
    engine = get_engine(database_url)
    gone = held_pools(engine, START)[0][0]
    with engine.connect() as conn:  # what the day after starts with in that pool
        amount = store.read_holdings(conn, START + dt.timedelta(days=1)).positions[gone]
    for k in (1, 2):  # missing on day k of 3: held where it is, not sold
        day = START + dt.timedelta(days=k)
        _drop_pool(resources, engine, day, gone)
        result = run_days(
            resources,
            day,
            selection=AssetSelection.keys(*CHAIN_KEYS)
            | AssetSelection.checks_for_assets("asset_allocations"),
        )
        assert result.success and all(checks_passed(result).values()), checks_passed(result)
        with engine.connect() as conn:
            alloc = store.read_allocation(conn, day)
            assert store.read_holdings(conn, day + dt.timedelta(days=1)).positions[gone] == amount
        assert alloc.amounts[gone] == amount  # was: 0, a forced exit on the first absence
        assert alloc.decision != "forced"
        held = f"pool {gone} held: missing from today's fetch (day {k} of 3)"
        assert any(r.startswith(held) for r in alloc.report["reasons"])
        line = next(a for a in alloc.report["allocations"] if a["pool"] == gone)
        assert (line["delta_usd"], line["daily_yield_usd"], line["gas_usd"]) == ("0.00", 0.0, 0.0)
        assert sum(alloc.amounts.values()) == alloc.total_usd
        why = next(
            m.metadata["why"].value
            for m in result.asset_materializations_for_node("allocation_chain")
            if m.asset_key.path == ["asset_allocations"] and m.partition == day.isoformat()
        )
        assert "missing from today's fetch (day" in why
    day3 = START + dt.timedelta(days=3)  # the third day in a row: confirmed, exited as today
    _drop_pool(resources, engine, day3, gone)
    assert run_days(resources, day3, selection=AssetSelection.keys(*CHAIN_KEYS)).success
    with engine.connect() as conn:
        alloc = store.read_allocation(conn, day3)
        group = conn.execute(
            sa.select(asset_allocation_details.c.pool_group).where(
                asset_allocation_details.c.allocation_date == day3,
                asset_allocation_details.c.pool_id == gone,
            )
        ).scalar_one()
    assert alloc.decision == "forced"
    assert alloc.amounts[gone] == 0
    assert any(f"pool {gone} vanished" in r for r in alloc.report["reasons"])
    assert group is None


def test_one_confirmation_day_exits_a_vanished_pool_at_once(
    database_url: str, tmp_path: Path
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"vanished_confirmation_days": 1}))
    resources = chain_resources(database_url, params)
    assert run_days(resources, START).success
    engine = get_engine(database_url)
    gone = held_pools(engine, START)[0][0]
    day2 = START + dt.timedelta(days=1)
    _drop_pool(resources, engine, day2, gone)
    assert run_days(resources, day2, selection=AssetSelection.keys(*CHAIN_KEYS)).success
    with engine.connect() as conn:
        alloc = store.read_allocation(conn, day2)
    assert alloc.decision == "forced" and alloc.amounts[gone] == 0
