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

import click

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


def _live_run(n_pools: int, database: str, workdir: str, pg_admin_url: str) -> dict:
    """Today's partition of the whole graph with the live source, against a local `/pools`
    server holding the sample's records of today, on a database holding the 60 days before."""
    import os

    from dagster import DagsterInstance, materialize

    from allocator_dagster.defs.allocation.assets import allocation_chain, pool_daily_metrics
    from allocator_dagster.defs.allocation.checks import ALLOCATION_CHECKS, POOL_CHECKS
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
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with _scratch_database(database, workdir, f"bench_live_{os.getpid()}", pg_admin_url) as url:
        engine = get_engine(url)
        for back in range(LOOKBACK_DAYS, 0, -1):  # the stored history the forecast reads
            day = today - dt.timedelta(days=back)
            universe, rejections = source.universe_for(day)
            replace_pool_day(engine, day, universe, rejections, source=PoolSource.DEFILLAMA)
        PoolSourceResource(sample_pools=n_pools).seed_lists(engine)
        records = source.records_for(today)
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
                [pool_daily_metrics, allocation_chain, *POOL_CHECKS, *ALLOCATION_CHECKS],
                instance=instance,
                resources=resources,
                partition_key=today.isoformat(),
                run_config=quiet,
            ).success
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "database": database,
        "pools": n_pools,
        "records": len(records),
        "seconds": seconds,
        "cpu": cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ok": ok,
    }


@click.command("live")
@click.option("--pools", "n_pools", default=20_000, show_default=True)
@click.option("--databases", default="sqlite,postgresql", show_default=True)
@click.option("--pg-admin-url", default=PG_ADMIN_URL, show_default=True)
@click.option("--one", default=None, hidden=True, help="database, in this process")
def live_command(n_pools: int, databases: str, pg_admin_url: str, one: str | None) -> None:
    """One day of the live path in Dagster: fetch `/pools` from a local server, validate, store,
    forecast from 60 stored days, solve, store, checks; on each database."""
    import tempfile

    if one is not None:
        with tempfile.TemporaryDirectory() as workdir:
            print(json.dumps(_live_run(n_pools, one, workdir, pg_admin_url)))
        return
    rows = []
    for database in databases.split(","):
        rows.append(
            _in_child(
                "live", "--pools", str(n_pools), "--pg-admin-url", pg_admin_url, "--one", database
            )
        )
        print(f"measured the live day on {database}", file=sys.stderr)
    print("Target: under 3 s end to end in Dagster.")
    print("| live day | database | records | wall s | CPU s | peak MiB | succeeded |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| fetch .. checks | {r['database']} | {r['records']:,} | {r['seconds']:.2f} "
            f"| {r['cpu']:.2f} | {r['peak_mib']:.0f} | {r['ok']} |"
        )
