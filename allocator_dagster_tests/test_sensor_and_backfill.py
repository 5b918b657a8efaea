"""Issue 5: list changes force a same-day reallocation; backfills reproduce past days exactly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from dagster import (
    AssetSelection,
    DagsterInstance,
    Definitions,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)

from allocator_dagster.cli import main as cli
from allocator_dagster.defs.allocation.assets import CHAIN_KEYS
from allocator_dagster.defs.allocation.sensors import list_change_sensor
from allocator_dagster.model import pool_tokens
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.activity import list_activity
from allocator_dagster.storage.lists import ListChangeError, change_list, list_entries
from allocator_dagster.storage.schema import asset_allocation_details, dynamic_list_changes
from allocator_dagster.storage.schema import pool_daily_metrics as pool_table
from allocator_dagster_tests.test_allocation_assets import ASSETS, _resources, run_days

TODAY = dt.datetime.now(dt.UTC).date()


def _sensor(database_url: str, cursor: str | None):
    resources = _resources(database_url)
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(),
        cursor=cursor,
        resources={"database": resources["database"]},
        definitions=Definitions(
            assets=ASSETS[:2], sensors=[list_change_sensor], resources=resources
        ),
    )
    return list_change_sensor(context)


def _held(engine: sa.Engine, day: dt.date) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(
                asset_allocation_details.c.pool_id,
                asset_allocation_details.c.symbol,
                asset_allocation_details.c.project,
            )
            .where(
                asset_allocation_details.c.allocation_date == day,
                asset_allocation_details.c.amount_usd > 0,
            )
            .order_by(asset_allocation_details.c.amount_usd.desc())
        ).all()


def test_list_changes_force_todays_reallocation_once(database_url: str) -> None:
    resources = _resources(database_url)
    assert run_days(resources, TODAY).success
    engine = get_engine(database_url)
    held = _held(engine, TODAY)
    assert len(held) >= 3

    # the seed lists are history too: approvals touch nothing held
    first = _sensor(database_url, None)
    assert isinstance(first, SensorResult) and not first.run_requests
    cursor = first.cursor
    with engine.connect() as conn:
        assert (
            int(cursor)
            == conn.execute(sa.select(sa.func.max(dynamic_list_changes.c.change_id))).scalar_one()
        )

    # a change that touches nothing held requests nothing, but is consumed
    change_list(engine, "icebox_tokens", "NOTHELD", action="add", reason="watch", by="alice")
    quiet = _sensor(database_url, cursor)
    assert not quiet.run_requests and int(quiet.cursor) > int(cursor)
    cursor = quiet.cursor

    # two changes between ticks: both acted on, in one run
    (pool_a, symbol_a, _), (_, _, project_b) = held[0], held[1]
    token_a = pool_tokens(symbol_a, ())[0][0]
    change_list(engine, "blacklisted_tokens", token_a, action="add", reason="exploit", by="bob")
    change_list(
        engine, "approved_protocols", project_b, action="remove", reason="audit failed", by="carol"
    )
    result = _sensor(database_url, cursor)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.partition_key == TODAY.isoformat()
    reasons = request.run_config["ops"]["allocation_chain"]["config"]["force_reasons"]
    assert any(token_a in r and pool_a in r for r in reasons)
    assert any(project_b in r for r in reasons)
    assert request.tags["allocator/forced_reallocation"] == "true"

    # a repeated tick (same cursor) asks for the same run key: Dagster runs it once
    repeat = _sensor(database_url, cursor)
    assert repeat.run_requests[0].run_key == request.run_key
    # after the cursor moved, nothing more
    assert isinstance(_sensor(database_url, result.cursor), SkipReason)

    # run what the sensor asked for: the new allocation holds none of the affected pools
    run = materialize(
        ASSETS,
        instance=DagsterInstance.ephemeral(),
        resources=resources,
        partition_key=request.partition_key,
        run_config=request.run_config,
        tags=request.tags,
        selection=request.asset_selection,
    )
    assert run.success
    with engine.connect() as conn:
        today = store.read_allocation(conn, TODAY)
    assert today.decision == "forced"
    after = {p for p, _, _ in _held(engine, TODAY)}
    assert pool_a not in after
    assert all(project != project_b for _, _, project in _held(engine, TODAY))
    assert all(token_a not in pool_tokens(s, ())[0] for _, s, _ in _held(engine, TODAY))
    assert today.report["reproduction"]["policy"] == "fresh"
    # re-running the forced day in reproduce mode replays its reasons: same result
    again = run_days(resources, TODAY)
    assert again.success
    with engine.connect() as conn:
        replay = store.read_allocation(conn, TODAY)
    assert (
        replay.result_hash == today.result_hash and replay.report["reproduction"]["matched"] is True
    )
    # the transparency log has each list change and the forced reallocation, once
    changes = list_activity(engine, event_type="list_change")
    assert [(a.actor, a.payload["list"], a.payload["action"]) for a in changes[-3:]] == [
        ("alice", "icebox_tokens", "add"),
        ("bob", "blacklisted_tokens", "add"),
        ("carol", "approved_protocols", "remove"),
    ]
    (forced,) = list_activity(engine, event_type="forced_reallocation")
    assert forced.subject_id == TODAY.isoformat()
    assert all(any(r in logged for logged in forced.payload["reasons"]) for r in reasons)


def test_list_values_are_validated_and_stored_safely(database_url: str) -> None:
    engine = get_engine(database_url)
    change_list(
        engine,
        "blacklisted_tokens",
        "O'REILLY\"",
        action="add",
        reason="quotes; and ' marks",
        by="x",
    )
    change_list(engine, "blacklisted_tokens", "USD₮0", action="add", reason="non-ASCII", by="x")
    change_list(
        engine,
        "blacklisted_tokens",
        "0xDC035D45D973E3EC169D2276DDAB16F1E407384F",
        action="add",
        reason="r",
        by="x",
    )
    values = [r["value"] for r in list_entries(engine, "blacklisted_tokens")]
    assert values == sorted(["O'REILLY\"", "USD₮0", "0xdc035d45d973e3ec169d2276ddab16f1e407384f"])
    for bad_list, bad in [
        ("blacklisted_tokens", "USDC-USDT"),
        ("blacklisted_tokens", "a b"),
        ("approved_protocols", "Aave V3"),
        ("approved_protocols", "x;DROP TABLE"),
    ]:
        with pytest.raises(ListChangeError):
            change_list(engine, bad_list, bad, action="add", reason="r", by="x")
    with pytest.raises(ListChangeError, match="already"):
        change_list(engine, "blacklisted_tokens", "usd₮0", action="add", reason="r", by="x")
    with pytest.raises(ListChangeError, match="not in"):
        change_list(engine, "icebox_tokens", "USDC", action="remove", reason="r", by="x")
    with engine.connect() as conn:  # refused changes leave no history
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(dynamic_list_changes)).scalar_one()
            == 3
        )


def test_lists_cli(database_url: str) -> None:
    runner = CliRunner()
    args = ["--database-url", database_url]
    added = runner.invoke(
        cli, ["lists", "add", "icebox-tokens", "usde", "--reason", "depeg", "--by", "ops", *args]
    )
    assert added.exit_code == 0, added.output
    assert "USDE added to icebox-tokens" in added.output
    shown = runner.invoke(cli, ["lists", "show", "icebox-tokens", *args])
    assert "USDE" in shown.output and "ops: depeg" in shown.output
    bad = runner.invoke(
        cli,
        ["lists", "add", "approved-protocols", "Not A Slug", "--reason", "r", "--by", "x", *args],
    )
    assert bad.exit_code == 2 and "not a protocol slug" in bad.output
    missing = runner.invoke(cli, ["lists", "remove", "icebox-tokens", "USDE", "--by", "x", *args])
    assert missing.exit_code != 0 and "--reason" in missing.output


DAYS = 30
START = dt.date(2026, 4, 1)


@pytest.mark.slow
def test_backfill_reproduces_hashes_then_fresh_snapshots_use_new_lists(
    database_url: str, tmp_path: Path
) -> None:
    end = START + dt.timedelta(days=DAYS - 1)
    resources = _resources(database_url)
    assert run_days(resources, START, end).success
    engine = get_engine(database_url)
    days = [START + dt.timedelta(days=k) for k in range(DAYS)]
    with engine.connect() as conn:
        original = {d: store.read_allocation(conn, d).result_hash for d in days}
    # change every list and the parameters
    (pool, symbol, project) = _held(engine, START + dt.timedelta(days=10))[0]
    token = pool_tokens(symbol, ())[0][0]
    change_list(engine, "blacklisted_tokens", token, action="add", reason="exploit", by="t")
    change_list(engine, "icebox_tokens", "WBTC", action="add", reason="custody", by="t")
    change_list(engine, "approved_tokens", "PYUSD2", action="add", reason="new", by="t")
    other = next(p for _, _, p in _held(engine, START) if p != project)
    change_list(engine, "approved_protocols", other, action="remove", reason="audit", by="t")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"tvl_limit_percentage": 0.02, "min_pools": 8}))
    changed = _resources(database_url, params)

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
        assert all(token not in pool_tokens(s, ())[0] for _, s, _ in _held(engine, d))
        assert all(p != other for _, _, p in _held(engine, d))
    assert sum(renewed[d].result_hash != original[d] for d in days) >= DAYS // 2
    assert sum(renewed[START].amounts.values()) == Decimal("10000000.00")


def test_reproduce_never_rewrites_a_day_and_fresh_reruns_keep_later_days_consistent(
    database_url: str,
) -> None:
    resources = _resources(database_url)
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


def test_a_held_pool_that_vanishes_is_exited(database_url: str) -> None:
    resources = _resources(database_url)
    assert run_days(resources, START).success
    engine = get_engine(database_url)
    gone = _held(engine, START)[0][0]
    day2 = START + dt.timedelta(days=1)
    assert run_days(resources, day2, selection=AssetSelection.keys("pool_daily_metrics")).success
    with engine.begin() as conn:
        conn.execute(
            pool_table.delete().where(
                pool_table.c.metric_date == day2, pool_table.c.pool_id == gone
            )
        )
    assert run_days(resources, day2, selection=AssetSelection.keys(*CHAIN_KEYS)).success
    with engine.connect() as conn:
        alloc = store.read_allocation(conn, day2)
        group = conn.execute(
            sa.select(asset_allocation_details.c.pool_group).where(
                asset_allocation_details.c.allocation_date == day2,
                asset_allocation_details.c.pool_id == gone,
            )
        ).scalar_one()
    assert alloc.decision == "forced"
    assert alloc.amounts[gone] == 0
    assert any(f"pool {gone} vanished" in r for r in alloc.report["reasons"])
    assert group is None
