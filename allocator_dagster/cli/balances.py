"""`allocator balances import --day D FILE --by NAME` and `allocator balances show --day D`."""

from __future__ import annotations

from datetime import datetime

import click

from allocator_dagster.balances_import import read_balances_file
from allocator_dagster.cli.options import DAY, database_url_option, fail
from allocator_dagster.inputs import InputFileError
from allocator_dagster.names import ActorNameError, clean_name
from allocator_dagster.pool_labels import fit, labels_from_universe
from allocator_dagster.storage import StorageError, get_engine
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.balances import import_balances, imports_of, ledger_source
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster.terminal import shown


@click.group("balances")
def command() -> None:
    """The treasury's observed balances per day (ALLOCATOR_BALANCES_SOURCE=ledger reads them)."""


@command.command("import")
@click.option("--day", type=DAY, required=True, help="The day whose start balances FILE holds.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--by", "by", required=True, help="Who imports (recorded with the import).")
@database_url_option
def import_command(day: datetime, file: str, by: str, database_url: str | None) -> None:
    """Replace the day's balances with FILE (HOLDINGS.csv or .json: pool,amount_usd rows and one
    idle_usd row); every pool must be in the day's pool data. Nothing is written on an error."""
    date = day.date()
    try:
        who = clean_name(by, "--by")
        engine = get_engine(database_url)
        universe = load_pool_day(engine, date)
        if universe.empty:
            fail(
                f"{file}: no pool data stored for {date}, so no pool can be checked: run "
                f"`allocator pools fetch --day {date}` (or materialise pool_daily_metrics) first"
            )
        balances = read_balances_file(file, set(universe["pool"].astype(str)))
        done = import_balances(engine, date, balances, by=who)
        with engine.connect() as conn:
            allocated = store.read_allocation(conn, date) is not None
    except (InputFileError, ActorNameError, StorageError) as exc:
        fail(exc)
    replaced = f", replacing the {done.replaced_source} rows" if done.replaced_source else ""
    click.echo(
        f"{date}: imported {done.positions} positions and idle cash, {done.total_usd:,.2f} USD "
        f"in total, from {shown(done.source_file)} (sha256 {done.file_sha256[:16]}) by "
        f"{shown(done.imported_by)} (import #{done.import_id}{replaced})"
    )
    if allocated:
        click.echo(
            f"note: {date} already has an allocation computed from the balances it had then; "
            "re-run it with the snapshot=fresh run config to decide from these (a reproduce "
            "re-run only reports that the result changed)",
            err=True,
        )


@command.command("show")
@click.option("--day", type=DAY, required=True, help="The day to show.")
@database_url_option
def show_command(day: datetime, database_url: str | None) -> None:
    """The day's ledger rows and who imported them."""
    date = day.date()
    try:
        engine = get_engine(database_url)
        with engine.connect() as conn:
            holdings = store.read_holdings(conn, date)
            source = ledger_source(conn, date)
            imports = imports_of(conn, date)
    except StorageError as exc:
        fail(exc)
    if holdings is None:
        click.echo(f"{date}: no balances (run `allocator balances import --day {date} FILE`)")
        return
    click.echo(f"{date}: {holdings.total_usd:,.2f} USD ({source})")
    # the label for a person, the full id for the files `balances import` reads
    labels = labels_from_universe(load_pool_day(engine, date), holdings.held())
    for pool, amount in holdings.held().items():
        label = fit(shown(labels.get(pool, "(not in the day's pool data)")), 60)
        click.echo(f"  {label:<60} {amount:>18,.2f}  {shown(pool)}")
    click.echo(f"  {'idle_usd':<60} {holdings.idle_usd:>18,.2f}")
    for item in imports:
        click.echo(
            f"import #{item.import_id} at {item.imported_at:%Y-%m-%d %H:%M:%S} by "
            f"{shown(item.imported_by)}: {shown(item.source_file)} sha256 {item.file_sha256}"
        )
