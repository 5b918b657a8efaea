"""Issue 11's "done when" for the ledger source, through Dagster on SQLite and PostgreSQL: a week
of days from imported balances (files in the `allocator solve --holdings` format), one import
deliberately differing from the previous day's plan, which the reconciliation reports (metadata
and the warning check); each day's rebalance plan proven by its blocking check and equal to
`allocator plan show`; the day's payouts leave the treasury and the next day expects it."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from allocator_dagster.cli import main
from allocator_dagster.day_payouts import expected_holdings, recorded_payout
from allocator_dagster.defs.resources import AllocationResource
from allocator_dagster.model import Holdings
from allocator_dagster.snapshots import hash_holdings
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster_tests.support.allocation_runs import chain_resources, run_days

DAY1 = dt.date(2026, 3, 1)
WEEK = [DAY1 + dt.timedelta(days=k) for k in range(7)]
DRIFT_DAY = WEEK[3]
NOT_WITHDRAWN = Decimal("25000.00")  # part of a withdrawal the executor did not carry out


def _import(database_url: str, day: dt.date, holdings: Holdings, tmp_path: Path) -> None:
    path = tmp_path / f"holdings-{day}.csv"
    rows = [f"{r['pool']},{r['amount_usd']}" for r in holdings.as_records()]
    path.write_text("pool,amount_usd\n" + "\n".join(rows) + "\n")
    args = ["balances", "import", "--day", str(day), str(path), "--by", "ops"]
    result = CliRunner().invoke(main, [*args, "--database-url", database_url])
    assert result.exit_code == 0, result.output


def _metadata(result, node: str, key: str) -> dict:
    for m in result.asset_materializations_for_node(node):
        if m.asset_key.path == [key]:
            return {k: v.value for k, v in m.metadata.items()}
    raise AssertionError(f"no {key} materialisation")


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_week_from_imported_balances(database_url: str, tmp_path: Path) -> None:
    resources = chain_resources(database_url)
    resources["allocation"] = AllocationResource(
        balances_source="ledger", drift_tolerance_usd="100.00"
    )
    engine = get_engine(database_url)
    from dagster import AssetSelection

    pools_only = AssetSelection.keys("pool_daily_metrics")
    rest = AssetSelection.all() - pools_only
    for day in WEEK:
        assert run_days(resources, day, selection=pools_only).success
        if day == DAY1:
            observed = Holdings.idle(Decimal("10000000.00"))
        else:
            planned = expected_holdings(engine, day)
            assert planned is not None
            observed = planned
            if day == DRIFT_DAY:  # the largest withdrawal of yesterday's plan was not all done
                largest = max(planned.held(), key=lambda p: (planned.held()[p], p))
                positions = {**planned.held(), largest: planned.held()[largest] - NOT_WITHDRAWN}
                observed = Holdings(positions=positions, idle_usd=planned.idle_usd)
                drifted = largest
        _import(database_url, day, observed, tmp_path)
        result = run_days(resources, day, selection=rest)
        assert result.success, day
        checks = _checks(result)
        assert checks["plan_identities_hold"].passed, checks["plan_identities_hold"].metadata
        drift_check = checks["balances_within_drift_tolerance"]
        balances = _metadata(result, "allocation_chain", "balances")
        with engine.connect() as conn:
            stored = store.read_allocation(conn, day)
            snapshot = store.load_snapshot(conn, stored.snapshot_id)
        # the decision starts from the observed holdings, never from the expected ones
        assert stored.total_usd == observed.total_usd
        assert snapshot.balances_hash == hash_holdings(observed)
        if day == DRIFT_DAY:
            assert not drift_check.passed and drift_check.severity.value == "WARN"
            details = drift_check.metadata["details"].value
            assert f"drift {-NOT_WITHDRAWN:+,.2f} USD" in details and drifted[:8] in details
            assert " · " in details  # the pool by its readable label
            assert Decimal(str(balances["drift_total_usd"])) == -NOT_WITHDRAWN
            assert balances["drift_pools"] == 1
        else:
            assert drift_check.passed, (day, drift_check.metadata)
            assert balances.get("drift_total_usd", 0.0) == 0.0
        # the plan the asset recorded is the plan `allocator plan show` prints
        plan = _metadata(result, "rebalance_plan", "rebalance_plan")
        shown = CliRunner().invoke(
            main, ["plan", "show", "--day", str(day), "--format", "json",
                   "--database-url", database_url],
        )  # fmt: skip
        assert shown.exit_code == 0, shown.output
        assert plan["plan"] == json.loads(shown.output)
        assert plan["order_count"] == len(plan["orders"].records)
        # the payout recorded with the day leaves the treasury: tomorrow expects less by it
        payout = recorded_payout(stored.report)
        assert payout is not None
        tomorrow = expected_holdings(engine, day + dt.timedelta(days=1))
        assert tomorrow is not None
        if payout.paid_usd > 0:
            assert tomorrow.total_usd == observed.total_usd + payout.profit_usd - payout.paid_usd
            assert plan["paid_out_usd"] == str(payout.paid_usd)
            assert {r.data["recipient"] for r in plan["orders"].records} >= {"dao", "creator"}
    assert any(recorded_payout(store.read_allocation(c, d).report).paid_usd > 0  # type: ignore[union-attr]
               for c in [engine.connect()] for d in WEEK)  # fmt: skip
