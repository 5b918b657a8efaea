"""`allocator backup PATH`: a consistent copy of the embedded SQLite database, even while in use."""

from __future__ import annotations

from pathlib import Path

import click

from allocator_dagster.cli.options import database_url_option, fail
from allocator_dagster.storage import StorageError, default_database_url
from allocator_dagster.storage.backup import backup_sqlite
from allocator_dagster.storage.db import normalise_url
from allocator_dagster.terminal import shown


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@database_url_option
def command(path: Path, database_url: str | None) -> None:
    """Copy the SQLite database to PATH with SQLite's online backup API (WAL included).

    Copying only the .sqlite file of a database in WAL mode can miss recent commits. For
    PostgreSQL this prints how to use pg_dump instead.
    """
    url = normalise_url(database_url or default_database_url())
    try:
        result = backup_sqlite(url, path)
    except StorageError as exc:
        fail(exc)
    click.echo(
        f"backed up {shown(result.source)} to {shown(result.target)} "
        f"({result.tables} tables, {result.pages} pages); it is one self-contained file"
    )
