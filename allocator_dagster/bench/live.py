"""live: one day of the live path in Dagster at full size: `/pools` fetched from a local server
speaking the API, validated, stored, forecast from 60 stored days, solved, stored, checked."""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import sqlalchemy as sa

from allocator_dagster.bench.common import PG_ADMIN_URL, _in_child, _scratch_database


@contextmanager
def _pools_server(records: list) -> Iterator[str]:
    """A local HTTP server speaking DefiLlama's `/pools` (the API's envelope); its base URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps({"status": "success", "data": records}).encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.rstrip("/") != "/pools":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


_QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _assets() -> list:
    from allocator_dagster.defs.allocation.assets import allocation_chain, pool_daily_metrics
    from allocator_dagster.defs.allocation.checks import ALLOCATION_CHECKS, POOL_CHECKS

    return [pool_daily_metrics, allocation_chain, *POOL_CHECKS, *ALLOCATION_CHECKS]


def _live_run(
    n_pools: int, database: str, workdir: str, pg_admin_url: str, allocated_days: int
) -> dict:
    """Today's partition of the whole graph with the live source, on a database holding the 60
    days before, the last `allocated_days` of them decided by the chain (the day's history
    charts and rebalance read them; without them the day would be a first day, charting
    nothing). The set-up runs here; the day in a new process, which imports what a run worker
    imports (the set-up's chain would have imported the solver and the charts' library)."""
    import os

    from dagster import DagsterInstance, materialize

    from allocator_dagster.defs.resources import (
        AllocationResource,
        DatabaseResource,
        PoolSourceResource,
    )
    from allocator_dagster.forecast import LOOKBACK_DAYS
    from allocator_dagster.pool_ingestion import sample_universe
    from allocator_dagster.sources.records import PoolSource
    from allocator_dagster.storage import get_engine
    from allocator_dagster.storage.pool_writes import replace_pool_day

    today = dt.datetime.now(dt.UTC).date()
    source = sample_universe(7, n_pools)
    os.environ.setdefault("DAGSTER_HOME", workdir)
    with _scratch_database(database, workdir, f"bench_live_{os.getpid()}", pg_admin_url) as url:
        engine = get_engine(url)
        decided = min(allocated_days, LOOKBACK_DAYS)
        for back in range(LOOKBACK_DAYS, decided, -1):  # the stored history the forecast reads
            day = today - dt.timedelta(days=back)
            universe, rejections = source.universe_for(day)
            replace_pool_day(engine, day, universe, rejections, source=PoolSource.DEFILLAMA)
        PoolSourceResource(sample_pools=n_pools).seed_lists(engine)
        if decided:  # the days before, decided by the chain (the sample source, no charts)
            with DagsterInstance.ephemeral() as instance:
                seeded = materialize(
                    _assets(),
                    instance=instance,
                    resources={
                        "database": DatabaseResource(database_url=url),
                        "pool_source": PoolSourceResource(sample_pools=n_pools),
                        "allocation": AllocationResource(chart_days=0),
                    },
                    tags={
                        "dagster/asset_partition_range_start": (
                            today - dt.timedelta(days=decided)
                        ).isoformat(),
                        "dagster/asset_partition_range_end": (
                            today - dt.timedelta(days=1)
                        ).isoformat(),
                    },
                    run_config=_QUIET,
                )
            if not seeded.success:
                raise click.ClickException("the allocation history before today failed")
        _settle(engine)
        engine.dispose()
        figures = _in_child(
            "live", "--pools", str(n_pools), "--day", today.isoformat(), "--measure", url
        )
    return {"database": database, **figures}


def _measure(n_pools: int, url: str, today: dt.date) -> dict:
    """The timed day, in this (new) process: `/pools` from a local server holding the sample's
    records of `today`, then the whole graph's partition, in Dagster."""
    import sqlalchemy as sa
    from dagster import DagsterInstance, materialize

    from allocator_dagster.defs.resources import (
        AllocationResource,
        DatabaseResource,
        PoolSourceResource,
    )
    from allocator_dagster.pool_ingestion import sample_universe
    from allocator_dagster.storage import get_engine
    from allocator_dagster.storage.schema import asset_allocations

    records = sample_universe(7, n_pools).records_for(today)
    engine = get_engine(url)  # the schema is checked before the clock, as a code server would
    with _pools_server(records) as base_url, DagsterInstance.ephemeral() as instance:
        resources = {
            "database": DatabaseResource(database_url=url),
            "pool_source": PoolSourceResource(
                source="defillama", defillama_base_url=base_url, retries=0
            ),
            "allocation": AllocationResource(),
        }
        t0, c0 = time.perf_counter(), time.process_time()
        ok = materialize(
            _assets(),
            instance=instance,
            resources=resources,
            partition_key=today.isoformat(),
            run_config=_QUIET,
        ).success
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    with engine.connect() as conn:  # what was measured: the day's decision, after how many
        decisions = dict(
            conn.execute(
                sa.select(asset_allocations.c.allocation_date, asset_allocations.c.decision)
            )
            .tuples()
            .all()
        )
    engine.dispose()
    return {
        "pools": n_pools,
        "records": len(records),
        "decided_before": sum(day < today for day in decisions),
        "decision": decisions.get(today),
        "seconds": seconds,
        "cpu": cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ok": ok,
    }


def _settle(engine: sa.Engine) -> None:
    """Write the set-up's data to disk before the clock starts: the day must not pay for
    flushing a month of seeded days (a live day's yesterday was flushed long ago)."""
    import os

    import sqlalchemy as sa

    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("CHECKPOINT"))
    os.sync()


@click.command("live")
@click.option("--pools", "n_pools", default=20_000, show_default=True)
@click.option("--databases", default="sqlite,postgresql", show_default=True)
@click.option("--pg-admin-url", default=PG_ADMIN_URL, show_default=True)
@click.option(
    "--allocated-days",
    default=30,
    show_default=True,
    type=click.IntRange(0, 60),
    help="stored days before today decided by the chain (its history charts read them)",
)
@click.option("--one", default=None, hidden=True, help="database, in this process")
@click.option("--measure", default=None, hidden=True, help="the day on this database URL")
@click.option("--day", default=None, hidden=True, type=click.DateTime(["%Y-%m-%d"]))
def live_command(
    n_pools: int,
    databases: str,
    pg_admin_url: str,
    allocated_days: int,
    one: str | None,
    measure: str | None,
    day: dt.datetime | None,
) -> None:
    """One day of the live path in Dagster: fetch `/pools` from a local server, validate, store,
    forecast from 60 stored days, solve, store, checks; on each database."""
    import tempfile

    if measure is not None and day is not None:
        print(json.dumps(_measure(n_pools, measure, day.date())))
        return
    if one is not None:
        with tempfile.TemporaryDirectory() as workdir:
            print(json.dumps(_live_run(n_pools, one, workdir, pg_admin_url, allocated_days)))
        return
    rows = []
    for database in databases.split(","):
        rows.append(
            _in_child(
                "live",
                "--pools",
                str(n_pools),
                "--pg-admin-url",
                pg_admin_url,
                "--allocated-days",
                str(allocated_days),
                "--one",
                database,
            )
        )
        print(f"measured the live day on {database}", file=sys.stderr)
    print("Target: under 3 s end to end in Dagster.")
    print(
        "| live day | database | records | days decided before | wall s | CPU s | peak MiB | succeeded |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| fetch .. checks | {r['database']} | {r['records']:,} | {r['decided_before']} "
            f"| {r['decision']} | {r['seconds']:.2f} "
            f"| {r['cpu']:.2f} | {r['peak_mib']:.0f} | {r['ok']} |"
        )
