"""backfill: the whole allocation graph, checks included, on the sample data, over a range of days,
as one run or one run per partition, on each database."""

from __future__ import annotations

import datetime as dt
import json
import re
import resource
import sys
import time

import click

from allocator_dagster.bench.common import (
    BENCH_DAY,
    PG_ADMIN_URL,
    _in_child,
    _scratch_database,
    _seconds,
)

DAY_MARK = re.compile(r"^(\d{4}-\d{2}-\d{2}): (pool day stored|allocation day stored|day checked)$")


def _day_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds each day took in the run, summed over the steps (pool day, allocation, checks),
    from the per-day log lines each step writes and the step's start."""
    from dagster import DagsterEventType

    last: dict[str, float] = {}
    per_day: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        step = entry.step_key or ""
        if entry.is_dagster_event and entry.dagster_event_type == DagsterEventType.STEP_START:
            last[step] = entry.timestamp
            continue
        match = DAY_MARK.match(entry.user_message or "") if not entry.is_dagster_event else None
        if match and step in last:
            day = match.group(1)
            per_day[day] = per_day.get(day, 0.0) + entry.timestamp - last[step]
            last[step] = entry.timestamp
    return per_day


def _backfill_run(
    days: int,
    n_pools: int,
    single: bool,
    database: str,
    workdir: str,
    pg_admin_url: str,
    chart_days: int | None = None,
) -> dict:
    """Materialise the whole allocation graph, checks included, for `days` days on a fresh
    database, in this process; its figures as a dict. `chart_days`: the days of the run that
    draw charts (None: the resource's default, the last 30)."""
    import os

    from dagster import DagsterInstance, materialize

    from allocator_dagster.defs.allocation.assets import allocation_chain, pool_daily_metrics
    from allocator_dagster.defs.allocation.checks import ALLOCATION_CHECKS, POOL_CHECKS
    from allocator_dagster.defs.resources import (
        AllocationResource,
        DatabaseResource,
        PoolSourceResource,
    )
    from allocator_dagster.pool_ingestion import sample_universe
    from allocator_dagster.storage import get_engine

    end = BENCH_DAY
    start = end - dt.timedelta(days=days - 1)
    # the sample's history up to the range, generated before the clock starts (real data is
    # fetched, not generated: the generator is not part of the pipeline's cost)
    sample_universe(7, n_pools).universe_for(start)
    os.environ.setdefault("DAGSTER_HOME", workdir)
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    assets = [pool_daily_metrics, allocation_chain, *POOL_CHECKS, *ALLOCATION_CHECKS]
    name = f"bench_{'single' if single else 'multi'}_{os.getpid()}"
    with _scratch_database(database, workdir, name, pg_admin_url) as url:
        get_engine(url)
        resources = {
            "database": DatabaseResource(database_url=url),
            "pool_source": PoolSourceResource(sample_pools=n_pools),
            "allocation": AllocationResource()
            if chart_days is None
            else AllocationResource(chart_days=chart_days),
        }
        with DagsterInstance.ephemeral() as instance:
            t0, c0 = time.perf_counter(), time.process_time()
            per_day: dict[str, float] = {}
            if single:
                tags = {
                    "dagster/asset_partition_range_start": start.isoformat(),
                    "dagster/asset_partition_range_end": end.isoformat(),
                }
                result = materialize(
                    assets, instance=instance, resources=resources, tags=tags, run_config=quiet
                )
                ok, runs = result.success, 1
                per_day = _day_seconds(instance, result.run_id)
            else:
                ok, runs, day = True, 0, start
                while day <= end:
                    d0 = time.perf_counter()
                    ok &= materialize(
                        assets,
                        instance=instance,
                        resources=resources,
                        partition_key=day.isoformat(),
                        run_config=quiet,
                    ).success
                    per_day[day.isoformat()] = time.perf_counter() - d0
                    runs += 1
                    day += dt.timedelta(days=1)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    window = min(30, days)
    timed = [per_day[k] for k in sorted(per_day)]
    return {
        "mode": "one run" if single else "one run per partition",
        "database": database,
        "pools": n_pools,
        "runs": runs,
        "days": days,
        "seconds": seconds,
        "cpu": cpu,
        "first_s_per_day": sum(timed[:window]) / window if len(timed) >= window else None,
        "last_s_per_day": sum(timed[-window:]) / window if len(timed) >= window else None,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ok": ok,
    }


@click.command("backfill")
@click.option("--days", default=365, show_default=True)
@click.option("--pools", "n_pools", default=20_000, show_default=True)
@click.option("--modes", default="single", show_default=True, help="single,multi")
@click.option("--databases", default="sqlite,postgresql", show_default=True)
@click.option("--pg-admin-url", default=PG_ADMIN_URL, show_default=True)
@click.option(
    "--chart-days",
    type=int,
    default=None,
    help="days of the run that draw charts (default: the resource's, the last 30); 0 makes "
    "the first and the last 30 days comparable",
)
@click.option("--one", default=None, hidden=True, help="mode:database, in this process")
def backfill_command(
    days: int,
    n_pools: int,
    modes: str,
    databases: str,
    pg_admin_url: str,
    chart_days: int | None,
    one: str | None,
) -> None:
    """Backfill the whole chain, checks included, on the sample data: one run (and one run per
    partition), on each database, each in its own process."""
    import tempfile

    if one is not None:
        mode, database = one.split(":")
        with tempfile.TemporaryDirectory() as workdir:
            row = _backfill_run(
                days, n_pools, mode == "single", database, workdir, pg_admin_url, chart_days
            )
        print(json.dumps(row))
        return
    charts = [] if chart_days is None else ["--chart-days", str(chart_days)]
    rows = []
    for database in databases.split(","):
        for mode in modes.split(","):
            rows.append(
                _in_child(
                    "backfill",
                    "--days",
                    str(days),
                    "--pools",
                    str(n_pools),
                    "--pg-admin-url",
                    pg_admin_url,
                    *charts,
                    "--one",
                    f"{mode}:{database}",
                )
            )
            print(f"measured {mode} on {database}", file=sys.stderr)
    target = 90.0 * days / 365
    print(
        f"Targets for {days} days (90 s per 365 days): under {target:.1f} s wall, peak memory "
        "under 1024 MiB, the last 30 days' s/day about the first 30 days'."
    )
    print(
        "| backfill of the whole chain | database | pools | runs | days | wall s | CPU s | s/day "
        "| first 30 days s/day | last 30 days s/day | peak MiB | succeeded |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['database']} | {r['pools']:,} | {r['runs']} | {r['days']} "
            f"| {r['seconds']:.1f} | {r['cpu']:.1f} | {r['seconds'] / r['days']:.3f} "
            f"| {_seconds(r['first_s_per_day'])} | {_seconds(r['last_s_per_day'])} "
            f"| {r['peak_mib']:.0f} | {r['ok']} |"
        )
