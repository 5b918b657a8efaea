"""ALLOCATOR_BALANCES_SOURCE=ledger through Dagster: each day starts from imported balances, a
day without them stops naming the import command, and the drift from the previous day's plan is
reported while the decision starts from what was observed. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from dagster import AssetSelection

from allocator_dagster.cli import main
from allocator_dagster.day_payouts import expected_holdings
from allocator_dagster.defs.allocation.assets import CHAIN_KEYS
from allocator_dagster.defs.resources import AllocationResource
from allocator_dagster.model import IDLE, Holdings
from allocator_dagster.snapshots import hash_holdings
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.balances import ledger_source
from allocator_dagster.storage.schema import balance_imports
from allocator_dagster_tests.support.allocation_runs import chain_resources, run_days

DAY1 = dt.date(2026, 3, 1)
DAYS = [DAY1 + dt.timedelta(days=k) for k in range(4)]
SHORTFALL = Decimal("12345.67")  # not withdrawn from the largest position...
LANDED_IDLE = Decimal("1000.00")  # ...and this much more idle cash than planned


def _ledger_resources(database_url: str) -> dict:
    resources = chain_resources(database_url)
    resources["allocation"] = AllocationResource(balances_source="ledger")
    return resources


def _import(database_url: str, day: dt.date, holdings: Holdings, tmp_path: Path) -> None:
    path = tmp_path / f"balances-{day}.csv"
    lines = [f"{r['pool']},{r['amount_usd']}" for r in holdings.as_records()]
    path.write_text("pool,amount_usd\n" + "\n".join(lines) + "\n")
    result = CliRunner().invoke(
        main,
        ["balances", "import", "--day", day.isoformat(), str(path), "--by", "ops",
         "--database-url", database_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def _error_text(result) -> str:
    error = result.get_step_failure_events()[0].event_specific_data.error
    return error.message + (error.cause.message if error.cause else "")


def _balances_metadata(result) -> dict:
    for m in result.asset_materializations_for_node("allocation_chain"):
        if m.asset_key.path == ["balances"]:
            return {k: v.value for k, v in m.metadata.items()}
    raise AssertionError("no balances materialisation")


def test_a_few_days_from_imported_balances_with_one_drifting_day(
    database_url: str, tmp_path: Path
) -> None:
    resources = _ledger_resources(database_url)
    engine = get_engine(database_url)
    pools_only = AssetSelection.keys("pool_daily_metrics")
    chain = AssetSelection.keys(*CHAIN_KEYS)

    # no balances for the first day: the run stops and names the command
    assert run_days(resources, DAY1, selection=pools_only).success
    failed = run_days(resources, DAY1, selection=chain)
    assert not failed.success
    assert "allocator balances import --day 2026-03-01 FILE" in _error_text(failed)

    _import(database_url, DAY1, Holdings.idle(Decimal("10000000.00")), tmp_path)
    first = run_days(resources, DAY1, selection=chain)
    assert first.success
    assert "drift_total_usd" not in _balances_metadata(first)  # nothing planned before day 1
    with engine.connect() as conn:
        assert ledger_source(conn, DAY1 + dt.timedelta(days=1)) is None  # no paper rows

    # day 2: the treasury executed day 1's plan exactly
    assert run_days(resources, DAYS[1], selection=pools_only).success
    planned = expected_holdings(engine, DAYS[1])
    assert planned is not None and planned.held()
    _import(database_url, DAYS[1], planned, tmp_path)
    second = run_days(resources, DAYS[1], selection=chain)
    assert second.success
    meta = _balances_metadata(second)
    assert meta["drift_total_usd"] == 0.0 and meta["drift_pools"] == 0
    assert "the plan was executed as expected" in meta["drift"]

    # day 3: part of a withdrawal did not happen, and more idle cash arrived than planned
    assert run_days(resources, DAYS[2], selection=pools_only).success
    planned = expected_holdings(engine, DAYS[2])
    assert planned is not None
    largest = max(planned.held(), key=lambda p: (planned.held()[p], p))
    positions = dict(planned.held())
    positions[largest] -= SHORTFALL
    observed = Holdings(positions=positions, idle_usd=planned.idle_usd + LANDED_IDLE)
    _import(database_url, DAYS[2], observed, tmp_path)
    third = run_days(resources, DAYS[2], selection=chain)
    assert third.success
    meta = _balances_metadata(third)
    assert Decimal(str(meta["drift_total_usd"])) == LANDED_IDLE - SHORTFALL
    assert meta["drift_pools"] == 2
    assert f"{-SHORTFALL:+,.2f}" in meta["drift"] and f"{LANDED_IDLE:+,.2f}" in meta["drift"]
    assert meta["total_usd"] == float(observed.total_usd)
    with engine.connect() as conn:
        stored = store.read_allocation(conn, DAYS[2])
        snapshot = store.load_snapshot(conn, stored.snapshot_id)
    # the decision started from the observed holdings, never from the expected ones
    assert stored.total_usd == observed.total_usd != planned.total_usd
    assert snapshot.balances_hash == hash_holdings(observed)

    # day 4 again without an import: stops, naming the command for that day
    assert run_days(resources, DAYS[3], selection=pools_only).success
    failed = run_days(resources, DAYS[3], selection=chain)
    assert not failed.success
    assert "allocator balances import --day 2026-03-04 FILE" in _error_text(failed)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(balance_imports)).scalar() == 3


def test_the_expectation_is_the_paper_ledger_of_the_day_before(database_url: str) -> None:
    resources = chain_resources(database_url)
    assert run_days(resources, DAY1, DAYS[1]).success
    engine = get_engine(database_url)
    with engine.connect() as conn:
        paper = store.read_holdings(conn, DAYS[2])
    expected = expected_holdings(engine, DAYS[2])
    assert paper is not None and expected == Holdings(
        positions=paper.held(), idle_usd=paper.idle_usd
    )
    assert IDLE not in expected.positions
