"""The daily allocation chain driven through Dagster, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from allocator_dagster.model import pool_tokens
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.schema import (
    asset_allocation_details,
    asset_allocations,
    blacklisted_tokens,
    daily_ledger,
)
from allocator_dagster_tests.support.allocation_runs import (
    chain_resources,
    checks_passed,
    run_days,
    write_params_file,
)

DAY1 = dt.date(2026, 3, 1)


def test_chain_runs_a_range_in_date_order_and_rematerialising_replaces(database_url: str) -> None:
    resources = chain_resources(database_url)
    result = run_days(resources, DAY1, DAY1 + dt.timedelta(days=2))
    assert result.success
    assert all(checks_passed(result).values()), checks_passed(result)
    checked = {
        e.check_name: e.metadata["days_checked"].value
        for e in result.get_asset_check_evaluations()
        if "days_checked" in e.metadata
    }
    assert checked and set(checked.values()) == {3}, checked  # every check looked at the 3 days
    engine = get_engine(database_url)
    with engine.connect() as conn:
        first = {d: store.read_allocation(conn, d) for d in (DAY1, DAY1 + dt.timedelta(days=1))}
        assert first[DAY1].decision == "full"
        assert first[DAY1].total_usd == Decimal("10000000.00")
        assert sum(first[DAY1].amounts.values()) == Decimal("10000000.00")
        ledger_days = conn.execute(sa.select(daily_ledger.c.ledger_date).distinct()).scalars().all()
    # the ledger of each next day follows from the allocation (paper trading)
    assert sorted(ledger_days) == [DAY1 + dt.timedelta(days=k) for k in range(4)]

    # re-materialise the middle day alone: replaced, not duplicated, same result (reproduce mode)
    again = run_days(resources, DAY1 + dt.timedelta(days=1))
    assert again.success
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(asset_allocations)).scalar_one()
        detail_dupes = conn.execute(
            sa.select(
                asset_allocation_details.c.allocation_date, asset_allocation_details.c.pool_id
            )
            .group_by(
                asset_allocation_details.c.allocation_date, asset_allocation_details.c.pool_id
            )
            .having(sa.func.count() > 1)
        ).all()
        second = store.read_allocation(conn, DAY1 + dt.timedelta(days=1))
    assert count == 3
    assert detail_dupes == []
    assert second.result_hash == first[DAY1 + dt.timedelta(days=1)].result_hash
    assert second.report["reproduction"]["matched"] is True
    metadata = again.asset_materializations_for_node("allocation_chain")
    assert any("reproduced 1 day(s)" in str(m.metadata.get("reproduction")) for m in metadata)


def test_day_without_the_previous_day_is_refused_with_a_clear_error(database_url: str) -> None:
    resources = chain_resources(database_url)
    assert run_days(resources, DAY1).success
    result = run_days(resources, DAY1 + dt.timedelta(days=5))
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    text = error.message + (error.cause.message if error.cause else "")
    assert "balances for 2026-03-06 are missing" in text
    assert "materialise asset_allocations from 2026-03-02 to 2026-03-05 first" in text


def test_yield_only_day_places_only_the_idle_cash(database_url: str, tmp_path: Path) -> None:
    params = write_params_file(
        tmp_path,
        tvl_limit_percentage=1.0,
        position_max_pct_pool_tvl=1.0,
        max_alloc_percentage=0.3,
        position_max_pct_total_assets=0.3,
        group1_max_pct=1.0,
        group2_max_pct=1.0,
        group3_max_pct=1.0,
        min_improvement_usd=1e9,
        min_tvl_usd=200_000_000,
        min_pools=4,
        min_position_usd=10_000,
    )
    resources = chain_resources(database_url, params)
    # day 1 pays the move costs before it earns anything, so day 2 starts with less capital and
    # positions at the 30 % cap break it (a full reallocation); from day 3 the capital grows
    day3 = DAY1 + dt.timedelta(days=2)
    assert run_days(resources, DAY1, day3).success
    with get_engine(database_url).connect() as conn:
        third = store.read_allocation(conn, day3)
        start = store.read_holdings(conn, day3)
    assert third.decision == "yield-only", third.report["reasons"]
    assert start.idle_usd > 0
    for pool, held in start.held().items():
        assert third.amounts.get(pool, Decimal("0")) >= held  # no position shrinks ...
    new_money = sum(third.amounts.values()) - sum(start.held().values())
    assert new_money == start.idle_usd  # ... and exactly the idle cash is placed
    assert any("only the idle cash" in r for r in third.report["reasons"])


def test_blacklisted_held_token_forces_an_exit(database_url: str) -> None:
    resources = chain_resources(database_url)
    assert run_days(resources, DAY1).success
    engine = get_engine(database_url)
    with engine.connect() as conn:
        day1 = store.read_allocation(conn, DAY1)
        details = conn.execute(
            sa.select(asset_allocation_details.c.pool_id, asset_allocation_details.c.symbol)
            .where(asset_allocation_details.c.allocation_date == DAY1)
            .order_by(asset_allocation_details.c.amount_usd.desc())
        ).all()
    pool, symbol = details[0]
    token = pool_tokens(symbol, ())[0][0]
    with engine.begin() as conn:
        conn.execute(
            blacklisted_tokens.insert().values(
                value=token, added_by="test", added_at=dt.datetime.now(dt.UTC), reason="exploit"
            )
        )
    result = run_days(resources, DAY1 + dt.timedelta(days=1))
    assert result.success
    assert all(checks_passed(result).values())
    with engine.connect() as conn:
        day2 = store.read_allocation(conn, DAY1 + dt.timedelta(days=1))
    assert day1.amounts[pool] > 0
    assert day2.decision == "forced"
    assert day2.amounts.get(pool, Decimal("0")) == 0
    assert any(pool in r and token in r and "blacklisted" in r for r in day2.report["reasons"])
    held_with_token = [
        p
        for p, s in details
        if token in pool_tokens(s, ())[0] and day2.amounts.get(p, Decimal("0")) > 0
    ]
    assert held_with_token == []


def test_infeasible_day_keeps_the_previous_allocation_in_force(
    database_url: str, tmp_path: Path
) -> None:
    engine = get_engine(database_url)
    assert run_days(chain_resources(database_url), DAY1).success
    impossible = write_params_file(tmp_path, min_pools=5000, min_position_usd=1000)
    result = run_days(chain_resources(database_url, impossible), DAY1 + dt.timedelta(days=1))
    assert result.success  # an infeasible day is a recorded outcome, not a crash
    with engine.connect() as conn:
        day2 = store.read_allocation(conn, DAY1 + dt.timedelta(days=1))
        in_force = store.allocation_in_force(conn, DAY1 + dt.timedelta(days=1))
        start = store.read_holdings(conn, DAY1 + dt.timedelta(days=1))
        after = store.read_holdings(conn, DAY1 + dt.timedelta(days=2))
    assert (day2.status, day2.decision) == ("infeasible", "hold")
    assert day2.amounts == {}
    assert any("min_pools=5000" in r for r in day2.report["reasons"])
    assert in_force.allocation_date == DAY1
    assert after.held() == start.held()  # nothing was executed
    assert after.idle_usd >= start.idle_usd
    meta = result.asset_materializations_for_node("allocation_chain")
    why = [str(m.metadata["why"].value) for m in meta if "why" in m.metadata]
    assert any("min_pools=5000" in w for w in why)


def test_milp_backend_runs_the_chain(database_url: str, tmp_path: Path) -> None:
    result = run_days(chain_resources(database_url, solver="milp"), DAY1)
    assert result.success
    with get_engine(database_url).connect() as conn:
        day = store.read_allocation(conn, DAY1)
    assert day.report["backend"] == "milp"
    assert sum(day.amounts.values()) == Decimal("10000000.00")


def test_a_range_run_keeps_no_pool_frame_of_its_days(engine) -> None:
    """The run's summary keeps each day's outcome without its pool frame, and without a view
    that would hold the frame's arrays (a range run's memory grew with its days)."""
    import gc
    import tracemalloc

    from allocator_dagster.daily_allocation import AllocationSettings, run_day
    from allocator_dagster.defs.allocation.assets import without_universe
    from allocator_dagster.parameters import AllocationParameters
    from allocator_dagster.pool_ingestion import ingest_sample_day, sample_universe
    from allocator_dagster.storage.lists import seed_lists_if_empty

    source = sample_universe(7, 3000)
    seed_lists_if_empty(engine, source.default_lists(), by="test", reason="test")
    ingest_sample_day(engine, DAY1, source)
    tracemalloc.start()
    try:
        outcome = run_day(engine, DAY1, AllocationSettings(parameters=AllocationParameters()))
        frame_bytes = int(outcome.universe.memory_usage(deep=True).sum())
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        kept = without_universe(outcome)
        del outcome
        gc.collect()
        released = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept.universe.empty and list(kept.universe.columns)
    assert released > frame_bytes // 2, (released, frame_bytes)
