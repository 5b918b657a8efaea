"""Issue 12: every day of a range run records its own materialisation metadata in Dagster."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from allocator_dagster.allocation_history import realised_usd
from allocator_dagster.defs.allocation.assets import CHAIN_KEYS
from allocator_dagster.defs.resources import AllocationResource
from allocator_dagster.risk import VOLATILITY_DAYS, apy_volatility
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster_tests.support.allocation_runs import chain_resources, run_days

DAYS = 30
START = dt.date(2026, 5, 1)
CHART_DAYS = 3
PNG = "(data:image/png;base64,"


def latest_metadata_by_day(instance: DagsterInstance, asset: str) -> dict[str, dict]:
    """The latest materialisation's metadata of each partition, from the instance's event log."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset)), limit=10_000
    ).records
    latest: dict[str, tuple[int, dict]] = {}
    for record in records:
        event = record.event_log_entry.asset_materialization
        assert event is not None and event.partition is not None
        if event.partition not in latest or record.storage_id > latest[event.partition][0]:
            latest[event.partition] = (
                record.storage_id,
                {k: v.value for k, v in event.metadata.items()},
            )
    return {day: meta for day, (_, meta) in latest.items()}


def test_every_day_of_a_range_run_has_its_own_metadata(database_url: str) -> None:
    end = START + dt.timedelta(days=DAYS - 1)
    instance = DagsterInstance.ephemeral()
    resources = chain_resources(database_url)
    resources["allocation"] = AllocationResource(chart_days=CHART_DAYS)
    assert run_days(resources, START, end, instance=instance).success
    days = [START + dt.timedelta(days=k) for k in range(DAYS)]
    engine = get_engine(database_url)
    with engine.connect() as conn:
        stored = {d: store.read_allocation(conn, d) for d in days}
        holdings = {d: store.read_holdings(conn, d) for d in days}
    meta = {key: latest_metadata_by_day(instance, key) for key in CHAIN_KEYS}
    stored_apy = {d: load_pool_day(engine, d).set_index("pool")["apy"] for d in days}
    for key in (*CHAIN_KEYS, "pool_daily_metrics"):
        assert set(latest_metadata_by_day(instance, key)) == {d.isoformat() for d in days}, key
    allocations = meta["asset_allocations"]
    for d in days:
        day, want = allocations[d.isoformat()], stored[d]
        assert day["day"] == d.isoformat()
        assert day["result_hash"] == want.result_hash, d
        assert day["total_usd"] == float(want.total_usd), d
        assert day["decision"] == str(want.decision), d
        assert day["positions"] == sum(amount > 0 for amount in want.amounts.values()), d
        assert f"{float(want.total_usd):,.2f}" in day["total"], d
        weights = [float(a / want.total_usd) for a in want.amounts.values() if a > 0]
        effective = 1 / sum(w * w for w in weights)
        assert abs(day["effective_positions"] - effective) < 1e-3, d
        assert "by protocol" in day["concentration"], d
        # the APY volatility of the day's positions over the stored days up to it (at most
        # VOLATILITY_DAYS), each day's APY as stored; the run's first day has no trailing days
        held = {p: float(a / want.total_usd) for p, a in want.amounts.items() if a > 0}
        invested = sum(held.values())
        window = [
            pd.DataFrame({"date": s, "pool": stored_apy[s].index, "apy": stored_apy[s].to_numpy()})
            for s in days
            if d - dt.timedelta(days=VOLATILITY_DAYS) < s <= d
        ]
        expected = apy_volatility(
            {p: w / invested for p, w in held.items()}, pd.concat(window, ignore_index=True)
        )
        if d == START:
            assert expected is None and "apy_volatility_pct" not in day, d
        else:
            assert expected is not None and expected > 0, d
            assert day["apy_volatility_pct"] == pytest.approx(expected, abs=1e-6), d
            assert "APY volatility of the holdings" in day["concentration"], d
        report = want.report
        assert day["expected_daily_yield_usd"] == pytest.approx(report["daily_yield_usd"], abs=0.01)
        assert day["costs_usd"] == pytest.approx(report["costs_usd"]["total"], abs=0.01)
        universe = load_pool_day(engine, d)
        apy = dict(zip(universe["pool"], universe["apy"], strict=True))
        assert day["realised_daily_yield_usd"] == float(realised_usd(holdings[d], apy)), d
        # charts for the run's last days only; the others say how to get theirs
        charted = d > end - dt.timedelta(days=CHART_DAYS)
        for chart in ("chart", "allocation_history_chart", "yield_history_chart"):
            assert (PNG in day.get(chart, "")) is charted, (d, chart)
        if not charted:
            assert f"Materialise {d} on its own" in day["chart"], d
            assert "allocation_history_chart" not in day
        solver = meta["solver_output"][d.isoformat()]
        assert (solver["decision"], solver["result_hash"]) == (str(want.decision), want.result_hash)
        assert meta["balances"][d.isoformat()]["total_usd"] == float(holdings[d].total_usd), d
    assert len({m["result_hash"] for m in allocations.values()}) == DAYS  # no day shows another's
    assert len({m["expected_daily_yield_usd"] for m in allocations.values()}) > 1
    # a day materialised on its own reads its trailing days from the database: the same figure
    last = end - dt.timedelta(days=3)
    assert run_days(resources, last, instance=instance).success
    again = latest_metadata_by_day(instance, "asset_allocations")[last.isoformat()]
    assert again["result_hash"] == allocations[last.isoformat()]["result_hash"]
    assert again["apy_volatility_pct"] == allocations[last.isoformat()]["apy_volatility_pct"]
