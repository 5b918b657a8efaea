"""The stored history the charts draw: the stored allocations, the ledger's realised yield, and a
window read day after day that equals one read of the whole window (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from allocator_dagster.allocation_history import realised_usd
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.history import HistoryWindow, read_history
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster_tests.support.allocation_runs import chain_resources, run_days

START = dt.date(2026, 4, 1)
DAYS = 4


def test_history_is_what_was_stored(database_url: str) -> None:
    end = START + dt.timedelta(days=DAYS - 1)
    assert run_days(chain_resources(database_url), START, end).success
    engine = get_engine(database_url)
    with engine.connect() as conn:
        history = read_history(conn, START - dt.timedelta(days=10), end + dt.timedelta(days=10))
        assert sorted(history) == [START + dt.timedelta(days=k) for k in range(DAYS)]
        for day, got in history.items():
            stored = store.read_allocation(conn, day)
            holdings = store.read_holdings(conn, day)
            assert stored is not None and holdings is not None
            assert got.decision == str(stored.decision)
            assert got.positions is not None
            assert {p.label.rsplit(" · ", 1)[1] for p in got.positions} == {
                pool[:8] for pool, amount in stored.amounts.items() if amount > 0
            }
            assert sum(p.amount_usd for p in got.positions) == pytest.approx(
                float(sum(stored.amounts.values())), abs=0.005
            )
            assert got.expected_yield_usd == pytest.approx(
                stored.report["daily_yield_usd"], abs=1e-6
            )
            universe = load_pool_day(engine, day)
            apy = dict(zip(universe["pool"], universe["apy"], strict=True))
            assert got.realised_yield_usd == float(realised_usd(holdings, apy))
    assert history[START].realised_yield_usd == 0.0  # the first day holds idle cash only
    assert all(h.realised_yield_usd for d, h in history.items() if d > START)

    window = HistoryWindow(engine, length=3)
    for k in range(DAYS):
        day = START + dt.timedelta(days=k)
        with engine.connect() as conn:
            whole = read_history(conn, day - dt.timedelta(days=2), day)
        assert window.up_to(day) == [whole[d] for d in sorted(whole)]
