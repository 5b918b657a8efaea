"""Freshness (issue 12): a day whose pool data or allocation is missing by 02:00 UTC shows."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster._core.test_utils import freeze_time

from allocator_dagster.defs.allocation.freshness import (
    FRESH_ASSETS,
    freshness_checks,
    freshness_sensor,
)
from allocator_dagster_tests.support.allocation_runs import ASSETS, chain_resources, run_days

DAY1 = dt.date(2026, 3, 1)
DAY2 = DAY1 + dt.timedelta(days=1)


def _evaluate(instance: dg.DagsterInstance, database_url: str, at: dt.datetime) -> dict:
    """The freshness checks as the sensor's run evaluates them, at `at`."""
    with freeze_time(at):
        result = dg.materialize(
            [*ASSETS, *freshness_checks],
            selection=dg.AssetSelection.checks(*freshness_checks),
            instance=instance,
            resources=chain_resources(database_url),
        )
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_a_stalled_day_fails_the_freshness_checks_until_it_runs(database_url: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = chain_resources(database_url)
    assert run_days(resources, DAY1, instance=instance).success

    # 01:59 on day 2: the deadline of day 2 has not passed, day 1 is what is expected
    early = _evaluate(instance, database_url, dt.datetime(2026, 3, 2, 1, 59, tzinfo=dt.UTC))
    assert {k: e.passed for k, e in early.items()} == {
        k.to_user_string(): True for k in FRESH_ASSETS
    }

    # 03:00 on day 2 and day 2 never ran: both assets are overdue, as failures
    late = _evaluate(instance, database_url, dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC))
    assert set(late) == {"pool_daily_metrics", "asset_allocations"}
    for evaluation in late.values():
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert "2026-03-02" in (evaluation.description or "")

    # a backfill of an older day does not hide the stalled one (two days back: the day right
    # before a stored one would change its paper start balances, and is refused)
    assert run_days(resources, DAY1 - dt.timedelta(days=2), instance=instance).success
    again = _evaluate(instance, database_url, dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC))
    assert not any(e.passed for e in again.values())

    assert run_days(resources, DAY2, instance=instance).success
    fresh = _evaluate(instance, database_url, dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC))
    assert all(e.passed for e in fresh.values())


def test_the_sensor_evaluates_checks_that_never_ran() -> None:
    instance = dg.DagsterInstance.ephemeral()
    defs = dg.Definitions(
        assets=ASSETS[:2],
        asset_checks=freshness_checks,
        sensors=[freshness_sensor],
        resources=chain_resources("sqlite://"),  # bound, never opened
    )
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    request = freshness_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert set(request.asset_check_keys) == {
        dg.AssetCheckKey(key, "freshness_check") for key in FRESH_ASSETS
    }
