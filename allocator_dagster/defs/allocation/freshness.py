"""Freshness: today's pool data and allocation must exist by 02:00 UTC, so a stalled day shows.

The schedule materialises today's partition at 00:30 UTC; by 02:00 the checks expect that
partition of `pool_daily_metrics` and `asset_allocations`. These are Dagster's time-partition
variant of the last-update freshness checks: a last-update check of a partitioned asset looks at
the newest record of *any* partition, so a backfill of old days would make a stalled today look
fresh. The checks run at the end of every run of the graph and, between runs, from the sensor
(which evaluates them again once they could have become overdue).

Dagster 1.13 marks these factories superseded by `FreshnessPolicy`, whose daemon also judges a
partitioned asset by its newest materialisation of any partition (the same blind spot), and
which is no asset check, so a failed day would not reach the check alerts. The checks are kept
knowingly and the supersession warning is silenced here only.
"""

from __future__ import annotations

import warnings

from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DefaultSensorStatus,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
)

FRESH_BY_CRON = "0 2 * * *"  # 02:00 UTC: the 00:30 schedule plus room for a slow source
FRESH_ASSETS = (AssetKey("pool_daily_metrics"), AssetKey("asset_allocations"))

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*is superseded.*")
    freshness_checks = build_time_partition_freshness_checks(
        assets=list(FRESH_ASSETS),
        deadline_cron=FRESH_BY_CRON,
        timezone="UTC",
        severity=AssetCheckSeverity.ERROR,  # visible as a failure, yet never blocks a run
    )
    freshness_sensor = build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks,
        name="allocation_freshness_sensor",
        minimum_interval_seconds=600,
        default_status=DefaultSensorStatus.RUNNING,
    )
