"""`backtest_report` on the stored pool days: the summary and charts in its metadata."""

from __future__ import annotations

import datetime as dt

from dagster import DagsterInstance, materialize

from allocator_dagster.defs.allocation.assets import pool_daily_metrics
from allocator_dagster.defs.allocation.backtest import backtest_report
from allocator_dagster_tests.support.allocation_runs import chain_resources

FIRST, LAST = dt.date(2025, 4, 1), dt.date(2025, 4, 4)


def _store_days(resources: dict, instance: DagsterInstance) -> None:
    tags = {
        "dagster/asset_partition_range_start": FIRST.isoformat(),
        "dagster/asset_partition_range_end": LAST.isoformat(),
    }
    assert materialize(
        [pool_daily_metrics], instance=instance, resources=resources, tags=tags
    ).success


def _report(resources: dict, instance: DagsterInstance, **config):
    return materialize(
        [backtest_report],
        instance=instance,
        resources=resources,
        run_config={"ops": {"backtest_report": {"config": config}}},
        raise_on_error=False,
    )


def test_backtest_report_from_the_stored_days(database_url: str) -> None:
    resources = chain_resources(database_url)
    with DagsterInstance.ephemeral() as instance:
        _store_days(resources, instance)
        result = _report(
            resources, instance, capital_usd=1_000_000.0, strategies=["allocator", "greedy", "hold"]
        )
        assert result.success
        (event,) = result.get_asset_materialization_events()
        metadata = event.materialization.metadata
    assert metadata["start"].value == str(FIRST) and metadata["end"].value == str(LAST)
    summary = metadata["summary"].value
    assert "| allocator |" in summary and "| greedy |" in summary and "| hold |" in summary
    assert metadata["allocator_net_usd"].value > 0
    assert "data:image/png;base64," in metadata["cumulative_net_yield"].value
    assert "effective number" in metadata["risk"].value


def test_a_range_without_stored_days_fails_with_the_day(database_url: str) -> None:
    resources = chain_resources(database_url)
    with DagsterInstance.ephemeral() as instance:
        _store_days(resources, instance)
        result = _report(resources, instance, start="2025-03-30", end=str(LAST))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None
    assert "no pool metrics stored for 2025-03-30" in failure.message
