"""One allocation day without Dagster (`daily_allocation`): the parts the chain's tests do not
reach one by one."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from allocator_dagster import daily_allocation
from allocator_dagster.parameters import AllocationParameters
from allocator_dagster.sources.records import validate_pool_records
from allocator_dagster.storage.pool_writes import replace_pool_day
from allocator_dagster_tests.support.instances import holdings_of

DAY = dt.date(2026, 5, 10)


def test_the_unlisted_held_pools_are_found_once_for_the_listings_and_the_decision(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pool gone is held and missing today and yesterday, listed the day before: found missing
    once, and those pools are what the earlier listings are read for and what is set aside."""
    records = [
        {"pool": p, "chain": "Ethereum", "project": "aave-v3", "symbol": "USDC", "tvlUsd": 1e6}
        for p in ("a", "gone")
    ]
    frame, _ = validate_pool_records(records, source="defillama")
    replace_pool_day(engine, DAY - dt.timedelta(days=2), frame, [], source="defillama")
    replace_pool_day(engine, DAY - dt.timedelta(days=1), frame.iloc[:1], [], source="defillama")
    found, read = [], []
    unlisted_held, listings_before = (
        daily_allocation.unlisted_held,
        daily_allocation.listings_before,
    )

    def counted(*args):
        found.append(unlisted_held(*args))
        return found[-1]

    def listings(conn, day, pools, days):
        read.append(list(pools))
        return listings_before(conn, day, pools, days)

    monkeypatch.setattr(daily_allocation, "unlisted_held", counted)
    monkeypatch.setattr(daily_allocation, "listings_before", listings)
    holdings = holdings_of({"a": "100.00", "gone": "200.00"})
    with engine.connect() as conn:
        aside = daily_allocation._held_aside(
            conn, DAY, frame.iloc[:1], holdings, AllocationParameters()
        )
    assert found == [{"gone": Decimal("200.00")}] and read == [["gone"]]
    assert list(aside) == ["gone"] and aside["gone"].chain == "Ethereum"
    assert aside["gone"].reason.startswith(
        "pool gone held: missing from today's fetch (day 2 of 3)"
    )
    with engine.connect() as conn:  # nothing missing: no listings read
        assert (
            daily_allocation._held_aside(conn, DAY, frame, holdings, AllocationParameters()) == {}
        )
    assert read == [["gone"]]


def test_a_new_day_before_a_stored_one_is_refused_on_the_paper_ledger(engine: sa.Engine) -> None:
    """On the paper ledger a new day becomes the next day's start. Deciding it before a stored
    day (a range extended back, from the UI as from the CLI) left that day kept on balances it
    was not decided on; refused before anything is written, unless the next day is decided
    again in the same run with the recomputation accepted."""
    from allocator_dagster.daily_allocation import AllocationSettings, DayInputError, run_day
    from allocator_dagster.pool_ingestion import ingest_sample_day, sample_universe
    from allocator_dagster.storage.allocations import read_allocation
    from allocator_dagster.storage.lists import seed_lists_if_empty

    source = sample_universe(7, 300)
    seed_lists_if_empty(engine, source.default_lists(), by="test", reason="test")
    before, stored = DAY - dt.timedelta(days=1), DAY
    for day in (before, stored):
        ingest_sample_day(engine, day, source)
    settings = AllocationSettings(parameters=AllocationParameters())
    first = run_day(engine, stored, settings)
    with pytest.raises(DayInputError, match=f"^{stored} is stored, .* deciding {before} first"):
        run_day(engine, before, settings)
    with engine.connect() as conn:
        assert read_allocation(conn, before) is None
        assert read_allocation(conn, stored).result_hash == first.report.result_hash
    with pytest.raises(DayInputError, match="is stored"):  # accepted, but the day after not rerun
        run_day(engine, before, settings, accept_recomputation=True)
    run_day(engine, before, settings, accept_recomputation=True, successor_in_run=True)
    again = run_day(engine, stored, settings, accept_recomputation=True)
    assert again.stored_day == "replaced"
    with pytest.raises(DayInputError, match=f"fresh re-run of {before} changes .* of {stored}"):
        run_day(engine, before, settings, snapshot_policy="fresh")  # without the day after
