"""`allocator pools`: import DefiLlama history, store a day's pool snapshot, show a stored day."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import click

from allocator_dagster.cli.options import DAY, FiniteFloatRange, database_url_option, fail
from allocator_dagster.pool_ingestion import (
    PoolDataError,
    import_history,
    ingest_defillama_day,
    ingest_history_day,
    ingest_sample_day,
)
from allocator_dagster.sources import POOL_SOURCE_ENV, PoolSource, default_sample, pool_source
from allocator_dagster.sources.defillama import (
    DEFAULT_BASE_URL,
    DefiLlamaClient,
    DefiLlamaError,
    default_history_window,
    select_pools_for_import,
)
from allocator_dagster.sources.history import HistoryError, history_file, open_history
from allocator_dagster.storage import StorageError, get_engine, redact
from allocator_dagster.storage.pool_reads import load_pool_day, load_pool_rejections
from allocator_dagster.terminal import shown


def _engine(database_url: str | None):
    try:
        return get_engine(database_url)
    except StorageError as exc:
        fail(exc)


@click.group(name="pools")
def pools() -> None:
    """Pool data: DefiLlama history import, daily snapshots, and what a stored day holds."""


@pools.command("import-history")
@click.option("--days", type=click.IntRange(min=1), required=True, help="Import the last N days.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Import the N largest pools by TVL (after --min-tvl).",
)
@click.option(
    "--min-tvl",
    type=FiniteFloatRange(min=0),
    default=1_000_000.0,
    show_default=True,
    help="Skip pools with less TVL (USD) today.",
)
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True, help="Yields API URL.")
@click.option(
    "--timeout", type=FiniteFloatRange(min=0.1), default=30.0, show_default=True, help="Seconds."
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Retries of a request on 429/5xx/connection errors (with backoff).",
)
@database_url_option
def import_history_command(
    days: int,
    top: int,
    min_tvl: float,
    base_url: str,
    timeout: float,
    retries: int,
    database_url: str | None,
) -> None:
    """Fetch /chart for the pools that matter and store the last N days of their history."""
    engine = _engine(database_url)
    client = DefiLlamaClient(base_url=base_url, timeout=timeout, retries=retries)
    start, end = default_history_window(days)
    try:
        universe, rejected = client.pools()
        pool_ids = select_pools_for_import(universe, top=top, min_tvl=min_tvl)
        click.echo(
            f"/pools: {len(universe)} pools ({len(rejected)} rejected); importing {len(pool_ids)} "
            f"pools with TVL >= {min_tvl:,.0f} USD for {start} .. {end}"
        )
        if not pool_ids:
            fail(f"no pool has TVL >= {min_tvl:,.0f} USD: nothing to import")
        with click.progressbar(length=len(pool_ids), label="fetching /chart") as bar:

            def progress(done: int, total: int, pool_id: str) -> None:
                bar.update(1)

            summary = import_history(
                client,
                engine,
                pool_ids=pool_ids,
                start=start,
                end=end,
                progress=progress,
                universe=universe,
            )
    except DefiLlamaError as exc:
        fail(exc)
    except StorageError as exc:
        fail(exc)
    click.echo(
        f"stored {summary.rows_written} rows over {summary.days_written} days "
        f"({summary.first_day} .. {summary.last_day}) for {summary.pools_with_history} pools "
        f"into {redact(str(engine.url))}; {len(summary.rejections)} chart rows rejected"
    )


@pools.command("fetch")
@click.option("--day", type=DAY, default=None, help="The day to store (default: today, UTC).")
@click.option("--base-url", default=None, help=f"Yields API URL (default {DEFAULT_BASE_URL}).")
@database_url_option
def fetch_command(day: datetime | None, base_url: str | None, database_url: str | None) -> None:
    """Store a day's pool snapshot (source: ALLOCATOR_POOL_SOURCE = sample | history | defillama)."""
    the_day = day.date() if day else datetime.now(UTC).date()
    try:
        source = pool_source()
    except ValueError as exc:
        fail(exc)
    engine = _engine(database_url)
    try:
        if source == PoolSource.SAMPLE:
            result = ingest_sample_day(engine, the_day, default_sample())
        elif source == PoolSource.HISTORY:
            result = ingest_history_day(engine, the_day, open_history(history_file()))
        else:
            client = DefiLlamaClient(base_url=base_url or DEFAULT_BASE_URL)
            result = ingest_defillama_day(engine, the_day, client.pools)
    except (DefiLlamaError, PoolDataError, HistoryError) as exc:
        fail(exc)
    except (StorageError, ValueError) as exc:
        fail(exc)
    if result.reused_stored_day:
        click.echo(f"{the_day}: already stored ({result.stored_rows} pools); nothing fetched")
        return
    with_forecast = int(result.universe["apy_forecast"].notna().sum())
    click.echo(
        f"{the_day}: stored {result.stored_rows} pools from {source} ({len(result.rejections)} "
        f"records rejected, {with_forecast} pools with a forecast) [{POOL_SOURCE_ENV}={source}]"
    )


def _number(value: float, digits: int) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:,.{digits}f}")
    )


@pools.command("show")
@click.option("--day", type=DAY, required=True, help="The stored day to show.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True)
@database_url_option
def show_command(day: datetime, top: int, database_url: str | None) -> None:
    """Show a stored day: its largest pools, with current and forecast APY and TVL."""
    the_day: date = day.date()
    engine = _engine(database_url)
    frame = load_pool_day(engine, the_day)
    rejections = load_pool_rejections(engine, the_day)
    if frame.empty:
        fail(f"no pool data stored for {the_day}; run `allocator pools fetch`")
    largest = frame.sort_values(["tvlUsd", "pool"], ascending=[False, True], kind="stable").head(
        top
    )
    click.echo(
        f"{the_day}: {len(frame)} pools, {len(rejections)} rejected records; "
        f"top {len(largest)} by TVL"
    )
    header = (
        f"{'pool':<38} {'chain':<11} {'project':<22} {'symbol':<18} {'TVL USD':>16} "
        f"{'APY %':>9} {'APY fc %':>9} {'TVL fc USD':>16}"
    )
    click.echo(header)
    click.echo("-" * len(header))
    for r in largest.itertuples(index=False):
        click.echo(
            f"{shown(r.pool)[:38]:<38} {shown(r.chain)[:11]:<11} {shown(r.project)[:22]:<22} "
            f"{shown(r.symbol)[:18]:<18} "
            f"{_number(r.tvlUsd, 0):>16} {_number(r.apy, 2):>9} {_number(r.apy_forecast, 2):>9} "
            f"{_number(r.tvl_forecast, 0):>16}"
        )
    for rejection in rejections[:10]:
        click.echo(
            f"rejected row {rejection.row_number} ({shown(rejection.pool_id)}): "
            f"{shown(rejection.reason)}"
        )
    if len(rejections) > 10:
        click.echo(f"... and {len(rejections) - 10} more rejected records")


command = pools
