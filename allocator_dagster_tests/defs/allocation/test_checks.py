"""The asset checks of the allocation chain fail on stored rows that break the model."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from dagster import AssetSelection

from allocator_dagster.storage import get_engine
from allocator_dagster.storage.schema import asset_allocation_details
from allocator_dagster.storage.schema import pool_daily_metrics as pool_table
from allocator_dagster_tests.support.allocation_runs import (
    chain_resources,
    checks_passed,
    run_days,
)

DAY1 = dt.date(2026, 3, 1)


def test_checks_fail_when_a_stored_allocation_breaks_a_limit(database_url: str) -> None:
    resources = chain_resources(database_url)
    assert run_days(resources, DAY1).success
    engine = get_engine(database_url)
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(asset_allocation_details.c.pool_id, asset_allocation_details.c.amount_usd)
            .where(asset_allocation_details.c.allocation_date == DAY1)
            .order_by(asset_allocation_details.c.amount_usd.desc())
        ).all()
        (big, big_amount), (small, small_amount) = rows[0], rows[-1]
        # move almost everything of the smallest position into the largest: caps break, sums hold
        moved = small_amount - Decimal("1.00")
        for pool, amount in ((big, big_amount + moved), (small, Decimal("1.00"))):
            conn.execute(
                asset_allocation_details.update()
                .where(
                    asset_allocation_details.c.allocation_date == DAY1,
                    asset_allocation_details.c.pool_id == pool,
                )
                .values(amount_usd=amount)
            )
    checks_only = run_days(
        resources, DAY1, selection=AssetSelection.checks_for_assets("asset_allocations")
    )
    passed = checks_passed(checks_only)
    assert passed["limits_hold"] is False
    assert passed["details_add_up"] is True


def test_pool_checks_fail_on_bad_stored_metrics(database_url: str) -> None:
    resources = chain_resources(database_url)
    day2 = DAY1 + dt.timedelta(days=1)
    assert run_days(resources, DAY1, day2).success
    engine = get_engine(database_url)
    with engine.begin() as conn:
        pools = (
            conn.execute(
                sa.select(pool_table.c.pool_id)
                .where(pool_table.c.metric_date == day2)
                .order_by(pool_table.c.pool_id)
            )
            .scalars()
            .all()
        )
        # most of the day vanished (a partial answer) and one forecast is infinite
        conn.execute(
            pool_table.delete().where(
                pool_table.c.metric_date == day2,
                pool_table.c.pool_id.in_(pools[: int(len(pools) * 0.7)]),
            )
        )
        conn.execute(
            pool_table.update()
            .where(pool_table.c.metric_date == day2, pool_table.c.pool_id == pools[-1])
            .values(tvl_forecast=float("inf"))
        )
    checks_only = run_days(
        resources, day2, selection=AssetSelection.checks_for_assets("pool_daily_metrics")
    )
    passed = checks_passed(checks_only)
    # the rows were deleted behind the day's packed row: its check sees the pools it lost
    assert passed == {
        "no_duplicate_pools": True,
        "finite_values": False,
        "row_count_sane": False,
        "packed_row_matches": False,
    }
