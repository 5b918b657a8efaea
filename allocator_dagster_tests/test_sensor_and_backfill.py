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
    DagsterInstance,
    Definitions,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)

from allocator_dagster.cli import main as cli
from allocator_dagster.defs.allocation.sensors import list_change_sensor
from allocator_dagster.model import pool_tokens
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.lists import ListChangeError, change_list, list_entries
from allocator_dagster.storage.schema import asset_allocation_details, dynamic_list_changes
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
